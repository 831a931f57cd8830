import type { Message } from '../backend/types'
import { isSameDay } from './dates'

/** Messages from one sender closer than this join one group (ui-anchors §1.1). */
export const GROUP_WINDOW_MS = 5 * 60_000

export type TimelineItem =
  | { kind: 'date'; key: string; date: Date }
  | { kind: 'unread'; key: 'unread-marker' }
  | {
      kind: 'message'
      key: string
      message: Message
      own: boolean
      /** First message of a sender group: show name/avatar. */
      groupStart: boolean
      /** Last message of a sender group: show the avatar beside it, more space below. */
      groupEnd: boolean
    }

const pending = (m: Message) => m.state === 'queued' || m.state === 'sending' || m.state === 'failed'

/** Whether `next` continues the group of `prev` (no separator between them is checked by the caller). */
export function continuesGroup(prev: Message, next: Message): boolean {
  if (prev.sender_id !== next.sender_id) return false
  const a = new Date(prev.created_at)
  const b = new Date(next.created_at)
  const gap = b.getTime() - a.getTime()
  if (gap < 0 && !pending(next)) return false
  if (gap >= GROUP_WINDOW_MS) return false
  if (!isSameDay(a, b)) return false
  if (prev.deleted !== next.deleted) return false
  return true
}

/**
 * Messages (oldest first) into list rows: a date separator whenever the local day changes,
 * the frozen "Neue Nachrichten" line before `unreadMarkerId`, and group flags.
 */
export function buildTimeline(messages: Message[], myId: string, unreadMarkerId: string | null): TimelineItem[] {
  const items: TimelineItem[] = []
  let prev: Message | null = null
  let lastDay: Date | null = null
  for (const m of messages) {
    const d = new Date(m.created_at)
    let broken = false
    if (!lastDay || !isSameDay(lastDay, d)) {
      // Unsent messages stay at the end; never open a new day for one older than the last day.
      if (!(lastDay && pending(m) && d < lastDay)) {
        items.push({ kind: 'date', key: `date-${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`, date: d })
        lastDay = d
        broken = true
      }
    }
    if (unreadMarkerId && m.id === unreadMarkerId) {
      items.push({ kind: 'unread', key: 'unread-marker' })
      broken = true
    }
    const groupStart = broken || !prev || !continuesGroup(prev, m)
    items.push({ kind: 'message', key: m.id, message: m, own: m.sender_id === myId, groupStart, groupEnd: true })
    prev = m
  }
  // groupEnd: the next row is not a continuation of the same group.
  for (let i = 0; i < items.length; i += 1) {
    const it = items[i]
    if (it?.kind !== 'message') continue
    const next = items[i + 1]
    it.groupEnd = !(next && next.kind === 'message' && !next.groupStart)
  }
  return items
}

/**
 * The id of the first unread message when a conversation opens: the oldest of the newest
 * `unreadCount` messages from others (own messages are never unread, so the marker is never
 * put before one of ours — ui-anchors §1.3).
 */
export function firstUnreadId(messages: Message[], myId: string, unreadCount: number): string | null {
  if (unreadCount <= 0) return null
  let seen = 0
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const m = messages[i]
    if (!m || m.sender_id === myId || m.deleted) continue
    seen += 1
    if (seen === unreadCount) return m.id
  }
  // Fewer loaded than unread: the marker sits before the oldest loaded message from others.
  const firstOther = messages.find((m) => m.sender_id !== myId && !m.deleted)
  return firstOther?.id ?? null
}

/** Merge older and newer pages by id, oldest first, unsent last (the engine's order). */
export function mergeMessages(older: Message[], newer: Message[]): Message[] {
  const byId = new Map<string, Message>()
  for (const m of older) byId.set(m.id, m)
  for (const m of newer) byId.set(m.id, m)
  const all = [...byId.values()]
  const sent = all.filter((m) => !pending(m))
  const unsent = all.filter(pending)
  const cmp = (a: Message, b: Message) =>
    a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  sent.sort(cmp)
  // keep the engine's order for unsent messages: send order
  const unsentOrder = new Map(newer.filter(pending).map((m, i) => [m.id, i]))
  unsent.sort((a, b) => (unsentOrder.get(a.id) ?? 0) - (unsentOrder.get(b.id) ?? 0))
  return [...sent, ...unsent]
}
