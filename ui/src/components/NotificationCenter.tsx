import { useQueryClient } from '@tanstack/react-query'
import { Bell, CheckCheck } from 'lucide-react'
import { useEffect, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { locale } from '../i18n'
import { shortStamp } from '../lib/dates'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { useConversations, useNotifications } from '../state/queries'
import { useUi } from '../state/ui'

export function NotificationCenter() {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const ui = useUi()
  const list = useNotifications()
  const conversations = useConversations()
  // The server titles every message notification "Neue Nachricht": name the conversation
  // instead (for a direct chat, the person), as the list does.
  const heading = (n: { conversation_id: string | null; title: string }) =>
    conversations.data?.find((c) => c.id === n.conversation_id)?.title ?? n.title
  const [open, setOpen] = useState(false)
  const wrapRef = useRef<HTMLDivElement>(null)
  const btnRef = useRef<HTMLButtonElement>(null)
  const unread = (list.data ?? []).filter((n) => !n.read).length

  useEffect(() => {
    if (!open) return
    function onDown(e: MouseEvent) {
      if (wrapRef.current && !wrapRef.current.contains(e.target as Node)) setOpen(false)
    }
    function onKey(e: KeyboardEvent) {
      if (e.key === 'Escape') {
        e.preventDefault()
        setOpen(false)
        btnRef.current?.focus()
      }
    }
    document.addEventListener('mousedown', onDown)
    document.addEventListener('keydown', onKey)
    return () => {
      document.removeEventListener('mousedown', onDown)
      document.removeEventListener('keydown', onKey)
    }
  }, [open])

  const refresh = () => void qc.invalidateQueries({ queryKey: keys.notifications })

  return (
    <div className="bell-wrap" ref={wrapRef}>
      <button
        ref={btnRef}
        type="button"
        className="icon-btn"
        data-testid="notification-bell"
        aria-label={unread > 0 ? t('notifications.bellCount', { count: unread }) : t('notifications.bell')}
        title={t('notifications.bell')}
        aria-expanded={open}
        aria-haspopup="dialog"
        onClick={() => setOpen((o) => !o)}
      >
        <Bell size={20} aria-hidden />
        {unread > 0 && (
          <span className="badge bell-badge" data-testid="bell-badge" aria-hidden>
            {unread > 99 ? '99+' : unread}
          </span>
        )}
      </button>
      {open && (
        <div
          className="popover notif-panel"
          role="dialog"
          aria-label={t('notifications.title')}
          data-testid="notification-panel"
        >
          <div className="popover-head">
            <h2>{t('notifications.title')}</h2>
            <button
              type="button"
              className="btn btn-small btn-ghost"
              data-testid="notifications-mark-all"
              disabled={unread === 0}
              onClick={() => void backend.markAllNotificationsRead().then(refresh)}
            >
              <CheckCheck size={16} aria-hidden />
              {t('notifications.markAll')}
            </button>
          </div>
          {(list.data ?? []).length === 0 ? (
            <p className="hint pad">{t('notifications.empty')}</p>
          ) : (
            <ul role="list" className="plain-list notif-list">
              {(list.data ?? []).map((n) => (
                <li key={n.id} className="notif-row" data-read={n.read}>
                  <button
                    type="button"
                    className="notif-item"
                    data-testid="notification-item"
                    data-notification-id={n.id}
                    autoFocus={false}
                    onClick={() => {
                      void backend.markNotificationRead(n.id).then(refresh)
                      if (n.conversation_id) ui.openConversation(n.conversation_id)
                      setOpen(false)
                    }}
                  >
                    {!n.read && <span className="notif-dot" aria-label={t('notifications.unread')} role="img" />}
                    <span className="notif-text">
                      <span className="notif-title">{heading(n)}</span>
                      <span className="notif-body">{n.body}</span>
                    </span>
                    <span className="conv-time">
                      {shortStamp(new Date(n.created_at), new Date(), locale(), {
                        today: t('chat.today'),
                        yesterday: t('chat.yesterday'),
                      })}
                    </span>
                  </button>
                  {!n.read && (
                    <button
                      type="button"
                      className="icon-btn"
                      aria-label={`${t('notifications.markRead')}: ${heading(n)}`}
                      title={t('notifications.markRead')}
                      onClick={() => void backend.markNotificationRead(n.id).then(refresh)}
                    >
                      <CheckCheck size={16} aria-hidden />
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  )
}
