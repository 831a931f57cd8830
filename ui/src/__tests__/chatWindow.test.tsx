import { act, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Message } from '../backend'
import { keys } from '../state/keys'
import { fake, renderApp } from '../test/render'

// Monday 30 March 2026, the day after the switch to summer time.
const NOW = new Date('2026-03-30T12:00:00+02:00')

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(NOW)
})
afterEach(() => {
  vi.useRealTimers()
})

async function openConversation(id: string, b = fake({ now: NOW })) {
  const r = renderApp(b)
  const item = await screen.findByRole('button', { name: new RegExp(id === 'c-maria' ? '^Maria Schulz' : id === 'c-bad' ? '^Badsanierung' : '^Petra') })
  await userEvent.click(item)
  const feed = await screen.findByTestId('message-feed')
  await waitFor(() => expect(within(feed).getAllByTestId('message').length).toBeGreaterThan(3))
  return { b, feed, ...r }
}

const follows = (a: Element, b: Element) => Boolean(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING)

describe('chat window', () => {
  it('renders a list of message articles with own messages marked and the newest at the end', async () => {
    const { feed } = await openConversation('c-maria')
    const msgs = within(feed).getAllByRole('article')
    const last = msgs.at(-1)!
    expect(last).toHaveTextContent('Passen die zu unserer Küche?')
    expect(last).toHaveAttribute('data-own', 'false')
    const mine = msgs.find((m) => m.textContent?.includes('LED-Birne'))!
    expect(mine).toHaveAttribute('data-own', 'true')
    expect(mine).toHaveAccessibleName(/^Deine Nachricht/)
  })

  it('puts day separators at local days: weekday, Gestern, Heute (Europe/Berlin, across DST)', async () => {
    const { feed } = await openConversation('c-maria')
    const seps = within(feed).getAllByTestId('day-separator').map((s) => s.textContent)
    expect(seps.slice(-3)).toEqual(['Samstag', 'Gestern', 'Heute'])
    const heute = within(feed).getAllByTestId('day-separator').at(-1)!
    const morning = within(feed).getByText(/Guten Morgen! Die Fassung ist E27/).closest('article')!
    expect(follows(heute, morning)).toBe(true)
  })

  it('groups consecutive messages of one sender within minutes', async () => {
    const { feed } = await openConversation('c-maria')
    const first = within(feed).getByText(/Noch eine Frage/).closest('article')!
    const second = within(feed).getByText(/Passen die zu unserer Küche/).closest('article')!
    expect(first).toHaveAttribute('data-group-start', 'true')
    expect(second).toHaveAttribute('data-group-start', 'false')
    // the sender's name is shown once per group
    expect(within(first).getByText('Maria Schulz')).toBeInTheDocument()
    expect(within(second).queryByText('Maria Schulz')).toBeNull()
  })

  it('shows "Neue Nachrichten" right before the first unread message and keeps it while new ones arrive', async () => {
    const { feed, b } = await openConversation('c-maria')
    const line = within(feed).getByTestId('unread-line')
    expect(line).toHaveTextContent('Neue Nachrichten')
    const firstUnread = within(feed).getByText(/Noch eine Frage/).closest('article')!
    const lastRead = within(feed).getByText(/LED-Birne/).closest('article')!
    expect(follows(line, firstUnread)).toBe(true)
    expect(follows(lastRead, line)).toBe(true)
    // opening marked the conversation read…
    await waitFor(() => expect(b.fake.calls.some((c) => c.name === 'mark_read' && c.args[0] === 'c-maria')).toBe(true))
    // …but the line stays where it was (frozen at open)
    act(() => {
      b.fake.receive('c-maria', 'u-maria', 'Und noch was: der Kühlschrank brummt.')
    })
    await within(feed).findByText(/Kühlschrank brummt/)
    expect(within(feed).getAllByTestId('unread-line')).toHaveLength(1)
    expect(follows(within(feed).getByTestId('unread-line'), within(feed).getByText(/Noch eine Frage/))).toBe(true)
  })

  it('appends an incoming message exactly once, even when the engine repeats the event', async () => {
    const { feed, b, qc } = await openConversation('c-maria')
    const cached = () => (qc.getQueryData(keys.timeline('c-maria')) as { messages: Message[] }).messages
    let id = ''
    act(() => {
      id = b.fake.receive('c-maria', 'u-maria', 'Danke!').id
    })
    act(() => {
      b.fake.emit('engine:message_upserted', { conversation_id: 'c-maria', message_id: id })
      b.fake.emit('engine:message_upserted', { conversation_id: 'c-maria', message_id: id })
    })
    await within(feed).findByText('Danke!')
    await waitFor(() => expect(cached().filter((m) => m.content === 'Danke!')).toHaveLength(1))
    expect(new Set(cached().map((m) => m.id)).size).toBe(cached().length)
    expect(cached().at(-1)?.id).toBe(id)
    expect(within(feed).getAllByText('Danke!')).toHaveLength(1)
  })

  it('shows a sent message at once and follows its state from the outbox events', async () => {
    const { feed } = await openConversation('c-maria')
    const box = screen.getByTestId('composer')
    await userEvent.type(box, 'Ich bin in 10 Minuten da.{Enter}')
    const article = () => within(feed).getByText('Ich bin in 10 Minuten da.').closest('article')!
    await waitFor(() => expect(article()).toHaveAttribute('data-state', 'sent'))
    expect(article()).toHaveAttribute('data-own', 'true')
  })

  it('queues while offline and shows the clock with "Wartet"', async () => {
    const b = fake({ now: NOW, scenario: 'offline' })
    const { feed } = await openConversation('c-maria', b)
    await userEvent.type(screen.getByTestId('composer'), 'Funkloch hier.{Enter}')
    const article = () => within(feed).getByText('Funkloch hier.').closest('article')!
    await waitFor(() => expect(article()).toHaveAttribute('data-state', 'queued'))
    expect(within(article()).getByTestId('send-state')).toHaveTextContent('Wartet')
    act(() => b.fake.setConnectivity({ state: 'online' }))
    await waitFor(() => expect(article()).toHaveAttribute('data-state', 'sent'))
  })

  it('shows the typing indicator for the open conversation', async () => {
    const { b } = await openConversation('c-bad')
    act(() => b.fake.setTyping('c-bad', ['u-ali']))
    expect(await screen.findByTestId('typing-indicator')).toHaveTextContent('Ali tippt…')
    act(() => b.fake.setTyping('c-bad', ['u-ali', 'u-thomas']))
    await waitFor(() => expect(screen.getByTestId('typing-indicator')).toHaveTextContent('2 Personen tippen…'))
    act(() => b.fake.setTyping('c-bad', []))
    await waitFor(() => expect(screen.queryByTestId('typing-indicator')).toBeNull())
  })

  it('opens the conversation asked for by app:open_conversation (notification click)', async () => {
    const b = fake({ now: NOW })
    renderApp(b)
    await screen.findAllByTestId('conversation-item')
    act(() => b.fake.emit('app:open_conversation', { conversation_id: 'c-thomas' }))
    expect(await screen.findByRole('heading', { name: 'Thomas Müller' })).toBeInTheDocument()
    await waitFor(() => expect(b.fake.opened).toContain('c-thomas'))
  })
})
