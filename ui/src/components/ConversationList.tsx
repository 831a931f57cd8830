import { useVirtualizer } from '@tanstack/react-virtual'
import { BellOff, Clock, Hammer, Users } from 'lucide-react'
import { useMemo, useRef } from 'react'
import { useTranslation } from 'react-i18next'
import type { ConversationRow, Profile } from '../backend'
import { locale } from '../i18n'
import { shortStamp } from '../lib/dates'
import { useConversations, useOnline } from '../state/queries'
import { useUi } from '../state/ui'
import { Avatar, errorText } from './common'
import { toAppError } from '../backend'

export const ROW_HEIGHT = 68

/** Newest activity first (the engine sorts too; a cache update may not have). */
export function sortConversations(rows: ConversationRow[]): ConversationRow[] {
  return [...rows].sort((a, b) =>
    a.last_activity_at < b.last_activity_at ? 1 : a.last_activity_at > b.last_activity_at ? -1 : a.id.localeCompare(b.id),
  )
}

export function previewText(
  row: ConversationRow,
  meId: string,
  t: (k: string, o?: Record<string, unknown>) => string,
): string {
  const m = row.last_message
  if (!m) return t('sidebar.noMessagesYet')
  const text = m.deleted ? t('sidebar.deletedMessage') : m.content.replace(/\s+/g, ' ')
  if (m.sender_id === meId) return t('sidebar.youPrefix', { text })
  if (row.kind !== 'direct') return t('sidebar.senderPrefix', { name: m.sender_name.split(' ')[0], text })
  return text
}

export function ConversationList({ me }: { me: Profile }) {
  const { t } = useTranslation()
  const q = useConversations()
  const ui = useUi()
  const rows = useMemo(() => sortConversations(q.data ?? []), [q.data])

  if (q.isPending) {
    return (
      <div className="conv-list" role="status" aria-busy="true" aria-label={t('common.loading')} data-testid="conversation-skeleton">
        {Array.from({ length: 7 }, (_, i) => (
          <div key={i} className="conv-skeleton">
            <div className="skeleton" style={{ width: 40, height: 40, borderRadius: '50%' }} />
            <div style={{ flex: 1 }}>
              <div className="skeleton" style={{ width: `${55 + ((i * 13) % 30)}%`, height: 14, marginBottom: 8 }} />
              <div className="skeleton" style={{ width: `${70 + ((i * 7) % 25)}%`, height: 12 }} />
            </div>
          </div>
        ))}
      </div>
    )
  }
  if (q.isError) {
    return (
      <div className="list-empty" role="alert">
        <p>{t('sidebar.loadFailed')}</p>
        <p className="hint">{errorText(t, toAppError(q.error))}</p>
        <button type="button" className="btn btn-small" onClick={() => void q.refetch()}>
          {t('common.retry')}
        </button>
      </div>
    )
  }
  if (rows.length === 0) {
    return (
      <div className="list-empty" data-testid="conversations-empty">
        <p>{t('sidebar.empty')}</p>
        <button type="button" className="btn btn-primary" onClick={() => ui.setDialog('new')}>
          {t('sidebar.emptyAction')}
        </button>
      </div>
    )
  }
  return <VirtualConversationList rows={rows} meId={me.id} />
}

function VirtualConversationList({ rows, meId }: { rows: ConversationRow[]; meId: string }) {
  const { t } = useTranslation()
  const parentRef = useRef<HTMLDivElement>(null)
  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parentRef.current,
    estimateSize: () => ROW_HEIGHT,
    getItemKey: (i) => rows[i]?.id ?? i,
    overscan: 8,
    initialRect: { width: 320, height: 700 },
  })
  return (
    <div ref={parentRef} className="conv-list">
      <div role="list" aria-label={t('sidebar.conversations')} style={{ height: v.getTotalSize(), position: 'relative' }}>
        {v.getVirtualItems().map((vi) => {
          const row = rows[vi.index]
          if (!row) return null
          return (
            <div
              key={vi.key}
              role="listitem"
              style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${vi.start}px)` }}
            >
              <ConversationItem row={row} meId={meId} />
            </div>
          )
        })}
      </div>
    </div>
  )
}

export function ConversationItem({ row, meId }: { row: ConversationRow; meId: string }) {
  const { t } = useTranslation()
  const ui = useUi()
  const online = useOnline()
  const active = ui.activeId === row.id
  const isOnline = row.partner_id ? online.data?.has(row.partner_id) ?? false : false
  const preview = previewText(row, meId, t)
  const unread = row.unread_count > 0
  const stamp = row.last_message ? shortStamp(new Date(row.last_message.created_at), new Date(), locale(), {
    today: t('chat.today'),
    yesterday: t('chat.yesterday'),
  }) : ''
  // Read out after the title (the visible badge and dots are hidden from assistive tech):
  // "Maria Schulz, 2 ungelesene Nachrichten, online".
  const extra: string[] = []
  if (unread) extra.push(t('sidebar.unread', { count: row.unread_count }))
  if (row.unsent_count > 0) extra.push(t('sidebar.unsent', { count: row.unsent_count }))
  if (row.partner_id) extra.push(isOnline ? t('sidebar.online') : t('sidebar.offline'))
  if (row.muted) extra.push(t('sidebar.muted'))
  if (row.left) extra.push(t('sidebar.left'))

  return (
    <button
      type="button"
      className="conv-item"
      data-testid="conversation-item"
      data-conversation-id={row.id}
      data-unread={row.unread_count}
      aria-current={active ? 'true' : undefined}
      onClick={() => ui.openConversation(row.id)}
    >
      {row.kind === 'direct' ? (
        <Avatar id={row.partner_id ?? row.id} name={row.title} size={40} showPresence decorative online={isOnline} />
      ) : (
        <span className="conv-kind-avatar" aria-hidden data-kind={row.kind}>
          {row.kind === 'project' ? <Hammer size={19} /> : <Users size={19} />}
        </span>
      )}
      <span className="conv-text">
        <span className="conv-line1">
          <span className={unread ? 'conv-title unread' : 'conv-title'}>
            {row.title}
            {extra.length > 0 && <span className="sr-only">{`, ${extra.join(', ')}, `}</span>}
          </span>
          {row.muted && <BellOff size={14} aria-hidden className="conv-muted" />}
          <span className="conv-time">{stamp}</span>
        </span>
        <span className="conv-line2">
          {row.unsent_count > 0 && (
            <span className="conv-unsent" data-testid="unsent-marker" aria-hidden title={t('sidebar.unsent', { count: row.unsent_count })}>
              <Clock size={13} aria-hidden />
              {row.unsent_count}
            </span>
          )}
          {row.left && (
            <span className="conv-left" aria-hidden>
              {t('sidebar.left')}
            </span>
          )}
          <span className={unread ? 'conv-preview unread' : 'conv-preview'}>{preview}</span>
          {unread && (
            <span className="badge" data-testid="unread-badge" data-muted={row.muted} aria-hidden>
              {row.unread_count > 99 ? '99+' : row.unread_count}
            </span>
          )}
        </span>
      </span>
    </button>
  )
}
