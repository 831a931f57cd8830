import { useVirtualizer } from '@tanstack/react-virtual'
import { ArrowDown } from 'lucide-react'
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { Message, Profile } from '../backend'
import { locale } from '../i18n'
import { captureAnchor, isAtBottom, restoreAnchor, shouldLoadOlder, type ScrollAnchor } from '../lib/anchor'
import { dayLabel } from '../lib/dates'
import { buildTimeline, firstUnreadId, type TimelineItem } from '../lib/timeline'
import { useBackend } from '../state/backend'
import { useQueryClient } from '@tanstack/react-query'
import { trimTimeline, useLoadOlder, useTimeline } from '../state/queries'
import { MessageRow } from './MessageRow'

type Row = TimelineItem | { kind: 'top'; key: 'top' }

function estimate(row: Row | undefined): number {
  if (!row) return 40
  if (row.kind === 'message') return row.groupStart ? 64 : 40
  if (row.kind === 'top') return 48
  return 44
}

export function MessageList({
  conversationId,
  me,
  unreadAtOpen,
  focusMessageId,
  onFocusDone,
  onEdit,
  title,
}: {
  conversationId: string
  me: Profile
  unreadAtOpen: number
  focusMessageId: string | null
  onFocusDone: () => void
  onEdit: (m: Message) => void
  title: string
}) {
  const { t } = useTranslation()
  const backend = useBackend()
  const q = useTimeline(conversationId)
  const loadOlder = useLoadOlder(conversationId)
  const messages = useMemo(() => q.data?.messages ?? [], [q.data])
  const hasOlder = q.data?.hasOlder ?? false

  // "Neue Nachrichten": computed once when the first data arrives, then frozen.
  const [marker, setMarker] = useState<{ id: string | null } | null>(null)
  if (marker === null && q.data) {
    setMarker({ id: firstUnreadId(q.data.messages, me.id, unreadAtOpen) })
  }
  const markerId = marker?.id ?? null

  const rows: Row[] = useMemo(
    () => [{ kind: 'top', key: 'top' } as const, ...buildTimeline(messages, me.id, markerId)],
    [messages, me.id, markerId],
  )

  const scrollRef = useRef<HTMLDivElement>(null)
  const stickRef = useRef(true)
  const anchorRef = useRef<ScrollAnchor | null>(null)
  const loadingRef = useRef(false)
  const [loadingOlder, setLoadingOlder] = useState(false)
  const [atBottom, setAtBottom] = useState(true)
  const [unseen, setUnseen] = useState(0)
  const [flashId, setFlashId] = useState<string | null>(null)

  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) => estimate(rows[i]),
    getItemKey: (i) => rows[i]?.key ?? i,
    overscan: 12,
    initialRect: { width: 800, height: 600 },
    onChange: (inst) => {
      // Measurements changed the total height: stay glued to the bottom while following.
      const el = scrollRef.current
      if (el && stickRef.current && !inst.isScrolling) {
        const target = el.scrollHeight - el.clientHeight
        if (Math.abs(el.scrollTop - target) > 1) el.scrollTop = target
      }
    },
  })

  const scrollToEnd = useCallback(() => {
    const el = scrollRef.current
    stickRef.current = true
    setAtBottom(true)
    setUnseen(0)
    if (el) el.scrollTop = el.scrollHeight
    v.scrollToIndex(rows.length - 1, { align: 'end' })
  }, [v, rows.length])

  // Initial position: the unread line (Mattermost: start, a little above), a searched message, or the bottom.
  const positioned = useRef(false)
  useLayoutEffect(() => {
    if (positioned.current || !q.data || marker === null) return
    positioned.current = true
    const focusIdx = focusMessageId ? rows.findIndex((r) => r.key === focusMessageId) : -1
    const markerIdx = rows.findIndex((r) => r.kind === 'unread')
    if (focusIdx >= 0) {
      stickRef.current = false
      v.scrollToIndex(focusIdx, { align: 'center' })
    } else if (markerIdx >= 0) {
      stickRef.current = false
      const dateAbove = rows[markerIdx - 1]?.kind === 'date' ? markerIdx - 1 : markerIdx
      v.scrollToIndex(dateAbove, { align: 'start' })
    } else {
      scrollToEnd()
    }
  }, [q.data, marker, rows, v, focusMessageId, scrollToEnd])

  // A message picked in search: show it (loading older pages until it is there) and flash it.
  useEffect(() => {
    if (!focusMessageId || !q.data) return
    const idx = rows.findIndex((r) => r.key === focusMessageId)
    if (idx >= 0) {
      stickRef.current = false
      setAtBottom(false)
      v.scrollToIndex(idx, { align: 'center' })
      setFlashId(focusMessageId)
      onFocusDone()
      const timer = setTimeout(() => setFlashId(null), 2500)
      return () => clearTimeout(timer)
    }
    if (hasOlder && !loadingRef.current) {
      loadingRef.current = true
      void loadOlder().finally(() => {
        loadingRef.current = false
      })
    } else if (!hasOlder) {
      onFocusDone()
    }
  }, [focusMessageId, q.data, rows, v, hasOlder, loadOlder, onFocusDone])

  // Before every data change the scroll handler has stored an anchor; after it, put it back
  // (prepends keep the reader's place), or follow the bottom.
  const prevMessages = useRef<Message[]>([])
  const lastHeight = useRef(0)
  useLayoutEffect(() => {
    const prev = prevMessages.current
    prevMessages.current = messages
    if (!positioned.current) return
    const el = scrollRef.current
    if (!el) return
    // Something I just wrote follows the bottom, wherever I was reading (Signal).
    const knownIds = new Set(prev.map((m) => m.id))
    if (prev.length > 0 && messages.some((m) => !knownIds.has(m.id) && m.sender_id === me.id && m.state !== 'sent' && m.state !== 'read')) {
      stickRef.current = true
      setAtBottom(true)
      setUnseen(0)
      setMarker((mk) => (mk?.id ? { id: null } : mk))
    }
    // A scroll the user just made may not have reached onScroll yet: trust the position as of
    // the last known height over the remembered "stuck" flag.
    if (stickRef.current && lastHeight.current > 0 && !isAtBottom(el.scrollTop, el.clientHeight, lastHeight.current)) {
      stickRef.current = false
    }
    if (stickRef.current) {
      el.scrollTop = el.scrollHeight - el.clientHeight
      lastHeight.current = el.scrollHeight
      return
    }
    lastHeight.current = el.scrollHeight
    const anchor = anchorRef.current
    if (anchor) {
      const boxes = v.measurementsCache.map((m) => ({ key: String(m.key), start: m.start, size: m.size }))
      const top = restoreAnchor(anchor, boxes)
      if (top !== null && Math.abs(top - el.scrollTop) > 0.5) el.scrollTop = top
    }
    // Count arrivals at the end while reading history.
    const known = knownIds
    const lastPrev = prev.at(-1)
    const added = messages.filter(
      (m) => !known.has(m.id) && m.sender_id !== me.id && (!lastPrev || m.created_at >= lastPrev.created_at),
    ).length
    if (added > 0 && prev.length > 0) setUnseen((n) => n + added)
  }, [messages, v, me.id, rows.length])

  // Back at the bottom for a while after reading far back: drop the old pages again.
  const qc = useQueryClient()
  const tooMany = messages.length > 200
  useEffect(() => {
    if (!atBottom || !tooMany) return
    const timer = setTimeout(() => {
      if (stickRef.current) trimTimeline(qc, conversationId)
    }, 5000)
    return () => clearTimeout(timer)
  }, [atBottom, tooMany, qc, conversationId])

  // Mark read when the newest message is in view.
  const lastId = messages.at(-1)?.id
  useEffect(() => {
    if (!atBottom || !lastId) return
    const mark = () => void backend.markRead(conversationId).catch(() => undefined)
    // Not while the window sits hidden in the tray; then as soon as it shows again.
    if (document.visibilityState !== 'hidden') {
      mark()
      return
    }
    const onVisible = () => {
      if (document.visibilityState !== 'hidden') {
        document.removeEventListener('visibilitychange', onVisible)
        mark()
      }
    }
    document.addEventListener('visibilitychange', onVisible)
    return () => document.removeEventListener('visibilitychange', onVisible)
  }, [atBottom, lastId, backend, conversationId])

  function onScroll() {
    const el = scrollRef.current
    if (!el) return
    const bottom = isAtBottom(el.scrollTop, el.clientHeight, el.scrollHeight)
    stickRef.current = bottom
    lastHeight.current = el.scrollHeight
    if (bottom !== atBottom) setAtBottom(bottom)
    if (bottom && unseen) setUnseen(0)
    anchorRef.current = captureAnchor(
      el.scrollTop,
      v.getVirtualItems().map((i) => ({ key: String(i.key), start: i.start, size: i.size })),
    )
    if (positioned.current && hasOlder && !loadingRef.current && shouldLoadOlder(el.scrollTop)) {
      loadingRef.current = true
      setLoadingOlder(true)
      void loadOlder().finally(() => {
        loadingRef.current = false
        setLoadingOlder(false)
      })
    }
  }

  const labels = { today: t('chat.today'), yesterday: t('chat.yesterday') }
  const now = new Date()
  const loc = locale()
  // "gelesen" is written out on the newest own message that was read (Element's sent receipt).
  const lastOwnReadId = useMemo(() => {
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      const m = messages[i]
      if (!m || m.sender_id !== me.id || m.deleted) continue
      if (m.state === 'read') return m.id
      if (m.state === 'sent') return null
    }
    return null
  }, [messages, me.id])

  return (
    <div className="timeline-wrap">
      <div
        ref={scrollRef}
        className="timeline"
        onScroll={onScroll}
        tabIndex={-1}
        data-testid="message-list"
        onKeyDown={(e) => {
          if (e.key === 'Escape') document.querySelector<HTMLTextAreaElement>('[data-testid="composer"]')?.focus()
        }}
      >
        {q.isPending ? (
          <div className="timeline-loading" role="status" aria-busy="true" aria-label={t('common.loading')}>
            {[60, 40, 75, 50].map((w, i) => (
              <div key={i} className={i % 2 ? 'skel-bubble own' : 'skel-bubble'}>
                <div className="skeleton" style={{ width: `${w}%`, height: 40, borderRadius: 14 }} />
              </div>
            ))}
          </div>
        ) : messages.length === 0 ? (
          <div className="timeline-empty">{t('chat.noMessages')}</div>
        ) : (
          <div
            role="list"
            aria-label={t('chat.messages') + ': ' + title}
            aria-busy={loadingOlder}
            data-testid="message-feed"
            className="feed"
            style={{ height: v.getTotalSize(), position: 'relative' }}
          >
            {v.getVirtualItems().map((vi) => {
              const row = rows[vi.index]
              if (!row) return null
              return (
                <div
                  key={vi.key}
                  data-index={vi.index}
                  ref={v.measureElement}
                  className="vrow"
                  role="listitem"
                  style={{ transform: `translateY(${vi.start}px)` }}
                >
                  {row.kind === 'top' ? (
                    <div className="timeline-top">
                      {hasOlder ? (loadingOlder ? t('chat.loadingOlder') : '') : t('chat.startOfConversation')}
                    </div>
                  ) : row.kind === 'date' ? (
                    <div className="day-sep" role="separator" data-testid="day-separator">
                      <span>{dayLabel(row.date, now, loc, labels)}</span>
                    </div>
                  ) : row.kind === 'unread' ? (
                    <div className="unread-line" role="separator" data-testid="unread-line">
                      <span>{t('chat.newMessages')}</span>
                    </div>
                  ) : (
                    <MessageRow
                      item={row}
                      flash={flashId === row.key}
                      onEdit={onEdit}
                      showReadLabel={row.key === lastOwnReadId}
                    />
                  )}
                </div>
              )
            })}
          </div>
        )}
      </div>
      {!atBottom && messages.length > 0 && (
        <button
          type="button"
          className="jump-latest"
          data-testid="jump-to-latest"
          aria-label={unseen > 0 ? t('chat.jumpToLatestCount', { count: unseen }) : t('chat.jumpToLatest')}
          title={t('chat.jumpToLatest')}
          onClick={() => {
            setMarker({ id: null })
            scrollToEnd()
          }}
        >
          <ArrowDown size={20} aria-hidden />
          {unseen > 0 && <span className="badge">{unseen}</span>}
        </button>
      )}
      <div className="sr-only" aria-live="polite">
        {latestAnnouncement(messages, me.id, t)}
      </div>
    </div>
  )
}

/** One polite live region with only the newest message from someone else (Mattermost). */
function latestAnnouncement(messages: Message[], meId: string, t: (k: string, o?: Record<string, unknown>) => string) {
  const last = messages.at(-1)
  if (!last || last.sender_id === meId || last.deleted) return ''
  return `${t('chat.messageFrom', { name: last.sender_name, time: '' }).replace(/,\s*$/, '')}: ${last.content}`
}
