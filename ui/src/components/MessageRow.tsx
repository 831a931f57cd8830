import { useQueryClient } from '@tanstack/react-query'
import { AlertCircle, Check, CheckCheck, Clock, Copy, LoaderCircle, Pencil, RotateCw, Trash2 } from 'lucide-react'
import { memo, useEffect, useRef, useState, type ReactNode } from 'react'
import { createPortal } from 'react-dom'
import { useTranslation } from 'react-i18next'
import type { Message, SendState } from '../backend'
import { toAppError } from '../backend'
import { locale } from '../i18n'
import { fullStamp, timeOfDay } from '../lib/dates'
import { splitLinks } from '../lib/text'
import type { TimelineItem } from '../lib/timeline'
import { useBackend } from '../state/backend'
import { keys } from '../state/keys'
import { Avatar, Dialog, errorText } from './common'

type MessageItem = Extract<TimelineItem, { kind: 'message' }>

export const MessageRow = memo(function MessageRow({
  item,
  flash,
  onEdit,
  showReadLabel,
}: {
  item: MessageItem
  flash: boolean
  onEdit: (m: Message) => void
  showReadLabel: boolean
}) {
  const { t } = useTranslation()
  const backend = useBackend()
  const qc = useQueryClient()
  const m = item.message
  const own = item.own
  const [menu, setMenu] = useState<{ x: number; y: number } | null>(null)
  const [confirmDelete, setConfirmDelete] = useState(false)
  const [actionError, setActionError] = useState<string | null>(null)
  const articleRef = useRef<HTMLElement>(null)
  const time = new Date(m.created_at)
  const timeText = timeOfDay(time, locale())
  const unsent = m.state === 'queued' || m.state === 'failed' || m.state === 'sending'
  const canEdit = own && !m.deleted && m.state !== 'failed'
  const canDelete = own && !m.deleted

  const refresh = () => {
    void qc.invalidateQueries({ queryKey: keys.timeline(m.conversation_id) })
    void qc.invalidateQueries({ queryKey: keys.conversations })
  }
  const run = (p: Promise<unknown>) =>
    p.then(refresh).catch((e: unknown) => setActionError(errorText(t, toAppError(e))))

  const actions: { key: string; label: string; icon: ReactNode; run: () => void; danger?: boolean }[] = []
  if (!m.deleted && m.content)
    actions.push({
      key: 'copy',
      label: t('chat.copy'),
      icon: <Copy size={16} aria-hidden />,
      run: () => void navigator.clipboard?.writeText(m.content).catch(() => undefined),
    })
  if (canEdit) actions.push({ key: 'edit', label: t('chat.edit'), icon: <Pencil size={16} aria-hidden />, run: () => onEdit(m) })
  if (canDelete)
    actions.push({
      key: 'delete',
      label: t('chat.deleteMessage'),
      icon: <Trash2 size={16} aria-hidden />,
      run: () => setConfirmDelete(true),
      danger: true,
    })

  const label = `${own ? t('chat.ownMessage', { time: timeText }) : t('chat.messageFrom', { name: m.sender_name, time: timeText })}`

  return (
    <article
      ref={articleRef}
      className="msg"
      data-testid="message"
      data-message-id={m.id}
      data-state={m.state}
      data-own={own}
      data-deleted={m.deleted}
      data-group-start={item.groupStart}
      data-group-end={item.groupEnd}
      data-flash={flash}
      aria-label={label}
      tabIndex={0}
      onContextMenu={(e) => {
        if (actions.length === 0) return
        const sel = window.getSelection()?.toString()
        if (sel) return // keep the native menu for copying a selection
        e.preventDefault()
        setMenu({ x: e.clientX, y: e.clientY })
      }}
      onKeyDown={(e) => {
        if (e.target !== e.currentTarget) return
        if ((e.shiftKey && e.key === 'F10') || e.key === 'ContextMenu') {
          e.preventDefault()
          const r = e.currentTarget.getBoundingClientRect()
          setMenu({ x: own ? r.right - 200 : r.left + 48, y: r.top + 24 })
        }
      }}
    >
      {!own && (
        <div className="msg-gutter">
          {item.groupStart && <Avatar id={m.sender_id} name={m.sender_name} size={32} />}
        </div>
      )}
      <div className="msg-body">
        {!own && item.groupStart && <div className="msg-sender">{m.sender_name}</div>}
        <div className="msg-bubble-row">
          <div className="bubble" title={fullStamp(time, locale())}>
            {m.deleted ? (
              <span className="tombstone">
                <Trash2 size={14} aria-hidden /> {t('chat.deleted')}
              </span>
            ) : (
              <MessageText text={m.content} />
            )}
            <span className="meta">
              {m.edited && !m.deleted && <span className="edited">{t('chat.edited')}</span>}
              <span className="time">{timeText}</span>
              {own && !m.deleted && <StateIcon state={m.state} showReadLabel={showReadLabel} />}
            </span>
          </div>
          {actions.length > 0 && (
            <div className="msg-toolbar" role="toolbar" aria-label={t('chat.messageActions')}>
              {actions.map((a) => (
                <button
                  key={a.key}
                  type="button"
                  className="icon-btn"
                  aria-label={a.label}
                  title={a.label}
                  data-testid={`message-${a.key}`}
                  onClick={a.run}
                >
                  {a.icon}
                </button>
              ))}
            </div>
          )}
        </div>
        {m.state === 'failed' && (
          <div className="failed-row" role="alert" data-testid="message-failed">
            <AlertCircle size={16} aria-hidden />
            <span>
              {t('state.failed')}
              {m.error ? ` — ${errorText(t, m.error)}` : ''}
            </span>
            <button type="button" className="btn btn-small" data-testid="message-retry" onClick={() => void run(backend.retryMessage(m.id))}>
              <RotateCw size={14} aria-hidden />
              {t('state.retry')}
            </button>
            <button
              type="button"
              className="btn btn-small btn-danger"
              data-testid="message-discard"
              onClick={() => void run(backend.discardMessage(m.id))}
            >
              <Trash2 size={14} aria-hidden />
              {t('state.discard')}
            </button>
          </div>
        )}
        {actionError && (
          <div className="error-text" role="alert">
            {actionError}
          </div>
        )}
      </div>
      {menu && (
        <ContextMenu
          x={menu.x}
          y={menu.y}
          items={actions}
          onClose={() => {
            setMenu(null)
            articleRef.current?.focus()
          }}
        />
      )}
      {confirmDelete && (
        <Dialog
          title={t('chat.deleteConfirmTitle')}
          onClose={() => setConfirmDelete(false)}
          width={420}
          initialFocus="[data-autofocus]"
          footer={
            <>
              <button type="button" className="btn" data-autofocus onClick={() => setConfirmDelete(false)}>
                {t('common.cancel')}
              </button>
              <button
                type="button"
                className="btn btn-danger-solid"
                data-testid="confirm-delete"
                onClick={() => {
                  setConfirmDelete(false)
                  void run(unsent ? backend.discardMessage(m.id) : backend.deleteMessage(m.id))
                }}
              >
                {t('common.delete')}
              </button>
            </>
          }
        >
          <p>{t('chat.deleteConfirmBody')}</p>
        </Dialog>
      )}
    </article>
  )
})

export function StateIcon({ state, showReadLabel }: { state: SendState; showReadLabel: boolean }) {
  const { t } = useTranslation()
  switch (state) {
    case 'queued':
      return (
        <span className="state state-queued" data-testid="send-state" title={t('state.queuedLong')}>
          <Clock size={14} aria-hidden />
          <span>{t('state.queued')}</span>
        </span>
      )
    case 'sending':
      return (
        <span className="state state-sending" data-testid="send-state" title={t('state.sending')}>
          <LoaderCircle size={14} aria-hidden className="spin" />
          <span>{t('state.sending')}</span>
        </span>
      )
    case 'sent':
      return (
        <span className="state state-sent" data-testid="send-state" role="img" aria-label={t('state.sent')} title={t('state.sent')}>
          <Check size={15} aria-hidden />
        </span>
      )
    case 'read':
      return (
        <span className="state state-read" data-testid="send-state" title={t('state.readLong')}>
          <CheckCheck size={15} aria-hidden />
          {showReadLabel ? <span>{t('state.read')}</span> : <span className="sr-only">{t('state.read')}</span>}
        </span>
      )
    case 'failed':
      return (
        <span className="state state-failed" data-testid="send-state" role="img" aria-label={t('state.failed')} title={t('state.failed')}>
          <AlertCircle size={14} aria-hidden />
        </span>
      )
  }
}

function MessageText({ text }: { text: string }) {
  const backend = useBackend()
  return (
    <span className="msg-text">
      {splitLinks(text).map((p, i) =>
        p.url ? (
          <a
            key={i}
            href={p.url}
            rel="noreferrer noopener"
            target="_blank"
            onClick={(e) => {
              e.preventDefault()
              void backend.openExternal(p.url ?? '')
            }}
            onAuxClick={(e) => {
              e.preventDefault()
              if (e.button === 1) void backend.openExternal(p.url ?? '')
            }}
          >
            {p.text}
          </a>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </span>
  )
}

function ContextMenu({
  x,
  y,
  items,
  onClose,
}: {
  x: number
  y: number
  items: { key: string; label: string; icon: ReactNode; run: () => void; danger?: boolean }[]
  onClose: () => void
}) {
  const ref = useRef<HTMLDivElement>(null)
  const { t } = useTranslation()
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('[role="menuitem"]')?.focus()
    function onDown(e: MouseEvent) {
      if (ref.current && !ref.current.contains(e.target as Node)) onClose()
    }
    document.addEventListener('mousedown', onDown)
    return () => document.removeEventListener('mousedown', onDown)
  }, [onClose])
  const left = Math.min(x, window.innerWidth - 220)
  const top = Math.min(y, window.innerHeight - items.length * 40 - 16)
  return createPortal(
    <div
      ref={ref}
      className="context-menu"
      role="menu"
      aria-label={t('chat.messageActions')}
      style={{ left, top }}
      onKeyDown={(e) => {
        const els = [...(ref.current?.querySelectorAll<HTMLElement>('[role="menuitem"]') ?? [])]
        const i = els.indexOf(document.activeElement as HTMLElement)
        if (e.key === 'Escape' || e.key === 'Tab') {
          e.preventDefault()
          e.stopPropagation()
          onClose()
        } else if (e.key === 'ArrowDown') {
          e.preventDefault()
          els[(i + 1) % els.length]?.focus()
        } else if (e.key === 'ArrowUp') {
          e.preventDefault()
          els[(i - 1 + els.length) % els.length]?.focus()
        }
      }}
    >
      {items.map((a) => (
        <button
          key={a.key}
          type="button"
          role="menuitem"
          className={a.danger ? 'menu-item danger' : 'menu-item'}
          onClick={() => {
            onClose()
            a.run()
          }}
        >
          {a.icon}
          {a.label}
        </button>
      ))}
    </div>,
    document.body,
  )
}
