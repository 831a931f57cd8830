import { act, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it } from 'vitest'
import type { ConversationRow } from '../backend'
import { ConversationList, previewText, sortConversations } from '../components/ConversationList'
import { fake, renderApp, renderWith } from '../test/render'

const items = () => screen.getAllByTestId('conversation-item')

describe('conversation list', () => {
  it('sorts by last activity, newest first, and re-sorts when a message arrives', async () => {
    const b = fake()
    renderApp(b)
    await waitFor(() => expect(items().length).toBe(6))
    // Petra's queued message (8 min ago) is the newest activity, then Maria (15 min), …
    expect(items().map((i) => i.dataset.conversationId)).toEqual(['c-petra', 'c-maria', 'c-bad', 'c-thomas', 'c-team', 'c-sabine'])
    // A new message in the oldest conversation moves it to the top.
    act(() => {
      b.fake.receive('c-sabine', 'u-sabine', 'Hallo, ist der Zähler schon getauscht?')
    })
    await waitFor(() => expect(items()[0]?.dataset.conversationId).toBe('c-sabine'))
  })

  it('shows the unread badge and the count in the accessible name; own last messages get "Du:"', async () => {
    renderApp(fake())
    await waitFor(() => expect(items().length).toBeGreaterThan(0))
    const maria = items().find((i) => i.dataset.conversationId === 'c-maria')!
    expect(within(maria).getByTestId('unread-badge')).toHaveTextContent('2')
    expect(maria).toHaveAccessibleName(/Maria Schulz, 2 ungelesene Nachrichten/)
    const thomas = items().find((i) => i.dataset.conversationId === 'c-thomas')!
    expect(within(thomas).queryByTestId('unread-badge')).toBeNull()
    expect(thomas).toHaveTextContent('Du: Passt, bis morgen um 7!')
    // group conversations prefix the sender's first name
    const bad = items().find((i) => i.dataset.conversationId === 'c-bad')!
    expect(bad).toHaveTextContent('Ali: Silikon mache ich morgen früh')
  })

  it('shows a presence dot for direct chats only, online or offline', async () => {
    renderApp(fake())
    await waitFor(() => expect(items().length).toBeGreaterThan(0))
    const dot = (id: string) => within(items().find((i) => i.dataset.conversationId === id)!).queryByTestId('presence-dot')
    await waitFor(() => expect(dot('c-maria')).toHaveAttribute('data-online', 'true'))
    expect(dot('c-thomas')).toHaveAttribute('data-online', 'false')
    expect(dot('c-bad')).toBeNull()
  })

  it('updates presence from the engine:presence event', async () => {
    const b = fake()
    renderApp(b)
    await waitFor(() => expect(items().length).toBeGreaterThan(0))
    act(() => b.fake.emit('engine:presence', { online: ['u-thomas'] }))
    const dot = (id: string) => within(items().find((i) => i.dataset.conversationId === id)!).getByTestId('presence-dot')
    await waitFor(() => expect(dot('c-thomas')).toHaveAttribute('data-online', 'true'))
    expect(dot('c-maria')).toHaveAttribute('data-online', 'false')
  })

  it('marks the open conversation with aria-current and shows an unsent marker', async () => {
    renderApp(fake())
    await waitFor(() => expect(items().length).toBeGreaterThan(0))
    const petra = () => items().find((i) => i.dataset.conversationId === 'c-petra')!
    expect(within(petra()).getByTestId('unsent-marker')).toHaveTextContent('2')
    expect(petra()).not.toHaveAttribute('aria-current')
    await userEvent.click(petra())
    expect(petra()).toHaveAttribute('aria-current', 'true')
  })

  it('shows skeletons while loading and the empty state with no conversations', async () => {
    const loading = renderWith(fake({ scenario: 'loading' }), <ConversationList me={fake().fake.me} />)
    expect(await screen.findByTestId('conversation-skeleton')).toBeInTheDocument()
    loading.unmount()
    renderWith(fake({ scenario: 'empty' }), <ConversationList me={fake().fake.me} />)
    expect(await screen.findByTestId('conversations-empty')).toHaveTextContent('Noch keine Unterhaltungen — starte eine neue')
  })
})


describe('pure helpers', () => {
  const row = (id: string, at: string): ConversationRow => ({
    id,
    kind: 'direct',
    title: id,
    partner_id: null,
    unread_count: 0,
    last_message: null,
    last_activity_at: at,
    unsent_count: 0,
    muted: false,
    left: false,
  })
  it('sortConversations orders by last_activity_at descending', () => {
    const rows = [row('a', '2026-01-01T10:00:00Z'), row('b', '2026-01-02T10:00:00Z'), row('c', '2025-12-31T10:00:00Z')]
    expect(sortConversations(rows).map((r) => r.id)).toEqual(['b', 'a', 'c'])
  })
  it('previewText uses "Du:" for own messages and the tombstone for deleted ones', () => {
    const t = (k: string, o?: Record<string, unknown>) => (k === 'sidebar.youPrefix' ? `Du: ${String(o?.text)}` : k === 'sidebar.deletedMessage' ? 'Nachricht gelöscht' : String(o?.text ?? k))
    const r = { ...row('a', ''), last_message: { sender_id: 'me', sender_name: 'Ich', content: 'Hallo', deleted: false, created_at: '' } }
    expect(previewText(r, 'me', t)).toBe('Du: Hallo')
    expect(previewText({ ...r, last_message: { ...r.last_message, sender_id: 'x', deleted: true } }, 'me', t)).toBe('Nachricht gelöscht')
  })
})
