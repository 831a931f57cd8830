import { describe, expect, it } from 'vitest'
import type { Message } from '../backend'
import { dayLabel } from '../lib/dates'
import { buildTimeline, continuesGroup, firstUnreadId, mergeMessages } from '../lib/timeline'

let n = 0
function m(sender: string, iso: string, extra: Partial<Message> = {}): Message {
  n += 1
  return {
    id: `m${String(n).padStart(3, '0')}`,
    conversation_id: 'c',
    sender_id: sender,
    sender_name: sender === 'me' ? 'Jonas' : 'Maria',
    content: `text ${n}`,
    created_at: new Date(iso).toISOString(),
    updated_at: new Date(iso).toISOString(),
    edited: false,
    deleted: false,
    state: 'sent',
    error: null,
    ...extra,
  }
}
const kinds = (items: ReturnType<typeof buildTimeline>) =>
  items.map((i) => (i.kind === 'message' ? `${i.message.sender_id}${i.groupStart ? '*' : ''}` : i.kind))

describe('time zone of the suite', () => {
  it('runs in Europe/Berlin (npm test sets TZ)', () => {
    expect(new Date('2026-07-01T12:00:00Z').getTimezoneOffset()).toBe(-120)
    expect(new Date('2026-01-01T12:00:00Z').getTimezoneOffset()).toBe(-60)
  })
})

describe('grouping by sender and time', () => {
  it('groups the same sender within 5 minutes and starts a new group after', () => {
    const ms = [
      m('maria', '2026-03-10T09:00:00+01:00'),
      m('maria', '2026-03-10T09:04:59+01:00'),
      m('maria', '2026-03-10T09:10:00+01:00'),
      m('me', '2026-03-10T09:10:30+01:00'),
      m('me', '2026-03-10T09:11:00+01:00'),
      m('maria', '2026-03-10T09:11:30+01:00'),
    ]
    expect(kinds(buildTimeline(ms, 'me', null))).toEqual(['date', 'maria*', 'maria', 'maria*', 'me*', 'me', 'maria*'])
  })

  it('marks group ends so the last bubble of a group gets the space below', () => {
    const ms = [m('maria', '2026-03-10T09:00:00+01:00'), m('maria', '2026-03-10T09:01:00+01:00'), m('me', '2026-03-10T09:02:00+01:00')]
    const items = buildTimeline(ms, 'me', null).filter((i) => i.kind === 'message')
    expect(items.map((i) => (i.kind === 'message' ? i.groupEnd : null))).toEqual([false, true, true])
  })

  it('never groups across midnight, across the unread line, or a tombstone with a live message', () => {
    const a = m('maria', '2026-03-10T23:58:00+01:00')
    const b = m('maria', '2026-03-11T00:01:00+01:00')
    expect(continuesGroup(a, b)).toBe(false)
    const c = m('maria', '2026-03-11T00:02:00+01:00')
    const d = m('maria', '2026-03-11T00:03:00+01:00')
    expect(kinds(buildTimeline([a, b, c, d], 'me', d.id))).toEqual(['date', 'maria*', 'date', 'maria*', 'maria', 'unread', 'maria*'])
    const e = m('maria', '2026-03-11T00:04:00+01:00', { deleted: true, content: '' })
    expect(continuesGroup(d, e)).toBe(false)
  })
})

describe('day separators (Europe/Berlin, DST)', () => {
  const labels = { today: 'Heute', yesterday: 'Gestern' }

  it('puts a separator at local midnight, not UTC midnight, on the spring-forward day', () => {
    // 29 March 2026: clocks go from 02:00 to 03:00. 23:30 UTC on the 28th is already the 29th in Berlin.
    const ms = [m('maria', '2026-03-28T22:30:00Z'), m('maria', '2026-03-28T23:30:00Z'), m('maria', '2026-03-29T01:30:00Z')]
    const items = buildTimeline(ms, 'me', null)
    expect(kinds(items)).toEqual(['date', 'maria*', 'date', 'maria*', 'maria*'])
    const dates = items.filter((i) => i.kind === 'date').map((i) => (i.kind === 'date' ? i.date.getDate() : 0))
    expect(dates).toEqual([28, 29])
  })

  it('keeps the autumn fall-back day (25 hours) as one day', () => {
    const ms = [m('maria', '2026-10-24T22:30:00Z'), m('maria', '2026-10-25T22:30:00Z')] // 00:30 and 23:30 local
    expect(kinds(buildTimeline(ms, 'me', null)).filter((k) => k === 'date')).toHaveLength(1)
  })

  it('labels Heute, Gestern, the weekday within a week, otherwise the date', () => {
    const now = new Date('2026-03-30T10:00:00+02:00') // Monday after the DST switch
    expect(dayLabel(new Date('2026-03-30T00:10:00+02:00'), now, 'de-DE', labels)).toBe('Heute')
    expect(dayLabel(new Date('2026-03-29T23:50:00+02:00'), now, 'de-DE', labels)).toBe('Gestern')
    expect(dayLabel(new Date('2026-03-29T00:30:00+01:00'), now, 'de-DE', labels)).toBe('Gestern')
    expect(dayLabel(new Date('2026-03-27T12:00:00+01:00'), now, 'de-DE', labels)).toBe('Freitag')
    expect(dayLabel(new Date('2025-03-12T12:00:00+01:00'), now, 'de-DE', labels)).toBe('12. März 2025')
    expect(dayLabel(new Date('2026-03-20T12:00:00+01:00'), now, 'en-GB', { today: 'Today', yesterday: 'Yesterday' })).toBe(
      '20 March 2026',
    )
  })

  it('does not open a new day for an unsent message created before the last day', () => {
    const ms = [m('maria', '2026-03-11T10:00:00+01:00'), m('me', '2026-03-10T23:00:00+01:00', { state: 'queued' })]
    expect(kinds(buildTimeline(ms, 'me', null))).toEqual(['date', 'maria*', 'me*'])
  })
})

describe('unread line', () => {
  const ms = [
    m('maria', '2026-03-10T09:00:00+01:00'),
    m('me', '2026-03-10T09:01:00+01:00'),
    m('maria', '2026-03-10T09:02:00+01:00'),
    m('me', '2026-03-10T09:03:00+01:00'),
    m('maria', '2026-03-10T09:04:00+01:00'),
  ]
  it('goes before the oldest of the newest N messages from others (own messages are never unread)', () => {
    expect(firstUnreadId(ms, 'me', 1)).toBe(ms[4]?.id)
    expect(firstUnreadId(ms, 'me', 2)).toBe(ms[2]?.id)
    expect(firstUnreadId(ms, 'me', 0)).toBeNull()
    const items = buildTimeline(ms, 'me', firstUnreadId(ms, 'me', 2))
    const idx = items.findIndex((i) => i.kind === 'unread')
    expect(items[idx + 1]?.key).toBe(ms[2]?.id)
  })
  it('falls back to the oldest loaded message from others when more are unread than loaded', () => {
    expect(firstUnreadId(ms, 'me', 10)).toBe(ms[0]?.id)
  })
})

describe('merging pages', () => {
  it('dedupes by id, orders by time and keeps unsent messages last in send order', () => {
    const a = m('maria', '2026-03-10T09:00:00+01:00')
    const b = m('me', '2026-03-10T09:01:00+01:00')
    const q1 = m('me', '2026-03-10T09:05:00+01:00', { state: 'queued' })
    const q2 = m('me', '2026-03-10T09:03:00+01:00', { state: 'failed' })
    const c = m('maria', '2026-03-10T09:06:00+01:00')
    const merged = mergeMessages([a, b], [b, c, q1, q2])
    expect(merged.map((x) => x.id)).toEqual([a.id, b.id, c.id, q1.id, q2.id])
  })
})

describe('trimming history', () => {
  it('keeps the newest page and every unsent message, and says older history exists', async () => {
    const { makeQueryClient } = await import('../state/queryClient')
    const { trimTimeline, PAGE } = await import('../state/queries')
    const { keys } = await import('../state/keys')
    const qc = makeQueryClient()
    const sent = Array.from({ length: 300 }, (_, i) => m('maria', new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString()))
    const queued = m('me', '2025-12-31T00:00:00Z', { state: 'queued' })
    qc.setQueryData(keys.timeline('c'), { messages: [...sent, queued], hasOlder: false })
    expect(trimTimeline(qc, 'c')).toBe(true)
    const after = qc.getQueryData(keys.timeline('c')) as { messages: Message[]; hasOlder: boolean }
    expect(after.messages).toHaveLength(PAGE + 1)
    expect(after.messages.at(-1)?.id).toBe(queued.id)
    expect(after.messages[0]?.id).toBe(sent[300 - PAGE]?.id)
    expect(after.hasOlder).toBe(true)
    expect(trimTimeline(qc, 'c')).toBe(false)
  })
})
