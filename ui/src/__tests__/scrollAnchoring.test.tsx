import { act, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it } from 'vitest'
import type { Message } from '../backend'
import { keys } from '../state/keys'
import { fake, renderApp } from '../test/render'

// Rows are 40 px in the jsdom layout stub (src/test/setup.ts); the viewport is 2000 px.
const ROW = 40

describe('older history on scroll', () => {
  it('loads the previous page near the top and keeps the row the reader looked at in place', async () => {
    const b = fake()
    const { qc } = renderApp(b)
    await userEvent.click(await screen.findByRole('button', { name: /^Thomas Müller/ }))
    await userEvent.click(await screen.findByRole('button', { name: /^Maria Schulz/ }))
    const list = await screen.findByTestId('message-list')
    const feed = await screen.findByTestId('message-feed')
    await waitFor(() => expect(within(feed).getAllByTestId('message').length).toBeGreaterThan(10))
    const cached = () => (qc.getQueryData(keys.timeline('c-maria')) as { messages: Message[]; hasOlder: boolean })
    expect(cached().messages).toHaveLength(50)
    expect(cached().hasOlder).toBe(true)

    // Scroll to 3.5 rows below the top: a row is cut 20 px at the top edge.
    act(() => {
      list.scrollTop = 3.5 * ROW
    })
    await waitFor(() => expect(b.fake.calls.some((c) => c.name === 'load_older')).toBe(true))
    const rowAt = (y: number) =>
      [...feed.querySelectorAll<HTMLElement>('.vrow')].find((r) => {
        const top = Number(/translateY\(([-\d.]+)px\)/.exec(r.style.transform)?.[1])
        return top <= y && y < top + ROW
      })
    await waitFor(() => expect(cached().messages.length).toBeGreaterThan(50))
    const added = cached().messages.length - 50
    // After the prepend the list moved down by exactly the added rows (plus any new date rows),
    // so the reader still sees the same row at the top edge.
    await waitFor(() => expect(list.scrollTop).toBeGreaterThanOrEqual(3.5 * ROW + added * ROW))
    const topRow = rowAt(list.scrollTop)
    expect(topRow).toBeDefined()
    const offsetInRow = list.scrollTop - Number(/translateY\(([-\d.]+)px\)/.exec(topRow!.style.transform)?.[1])
    expect(offsetInRow).toBe(ROW / 2)
  })
})

describe('reading history while messages arrive', () => {
  it('does not jump; the jump button counts the new messages and takes the reader down', async () => {
    const b = fake()
    renderApp(b)
    await userEvent.click(await screen.findByRole('button', { name: /^Badsanierung/ }))
    const list = await screen.findByTestId('message-list')
    // make the conversation longer than one page: 60 more messages from Ali
    act(() => {
      for (let i = 0; i < 60; i += 1) b.fake.receive('c-bad', 'u-ali', `Zwischenstand ${i + 1}`)
    })
    await within(await screen.findByTestId('message-feed')).findByText('Zwischenstand 60')
    // Read further up: at the top the previous page loads and the view keeps its place. Where
    // the list stands first depends on how the 60 arrivals were fetched (a busy machine
    // coalesces them into one page of 50, which the 2,000 px test viewport shows whole, opened
    // at the unread line, already at the top): so, like a reader, scroll down and up again
    // until the history above has loaded and the view is away from the newest message.
    await waitFor(() => {
      act(() => {
        list.scrollTop = list.scrollHeight
      })
      act(() => {
        list.scrollTop = 0
      })
      expect(screen.getByTestId('jump-to-latest')).toBeInTheDocument()
    }, { timeout: 30_000 })
    await waitFor(() => expect(list.scrollHeight).toBeGreaterThan(2500))
    await new Promise((r) => setTimeout(r, 100))
    const before = list.scrollTop
    // What the button counted so far depends on where the reader stood when the 60 arrived.
    const unseen = () => {
      const name = screen.getByTestId('jump-to-latest').getAttribute('aria-label') ?? ''
      expect(name).toMatch(/^Zu den neuesten Nachrichten(, \d+ neue)?$/)
      return Number(/(\d+) neue/.exec(name)?.[1] ?? 0)
    }
    const counted = unseen()
    act(() => {
      b.fake.receive('c-bad', 'u-thomas', 'Material ist da.')
      b.fake.receive('c-bad', 'u-maria', 'Danke euch!')
    })
    await waitFor(() => expect(unseen()).toBe(counted + 2))
    expect(list.scrollTop).toBe(before)
    await userEvent.click(screen.getByTestId('jump-to-latest'))
    await waitFor(() => expect(screen.queryByTestId('jump-to-latest')).toBeNull())
    expect(list.scrollTop).toBe(list.scrollHeight - list.clientHeight)
  })
})
