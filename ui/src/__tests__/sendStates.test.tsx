import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it } from 'vitest'
import type { Message, SendState } from '../backend'
import { MessageRow } from '../components/MessageRow'
import { fake, renderWith } from '../test/render'

function own(state: SendState, extra: Partial<Message> = {}): Message {
  return {
    id: `m-${state}`,
    conversation_id: 'c-petra',
    sender_id: 'u-jonas',
    sender_name: 'Jonas Becker',
    content: 'Ich könnte die Wallbox am 14. installieren.',
    created_at: '2026-03-10T09:00:00Z',
    updated_at: '2026-03-10T09:00:00Z',
    edited: false,
    deleted: false,
    state,
    error: state === 'failed' ? { code: 'server_refused', message: 'refused' } : null,
    ...extra,
  }
}

function renderRow(m: Message, showReadLabel = false) {
  const b = fake()
  renderWith(
    b,
    <MessageRow
      item={{ kind: 'message', key: m.id, message: m, own: true, groupStart: true, groupEnd: true }}
      flash={false}
      onEdit={() => undefined}
      showReadLabel={showReadLabel}
    />,
  )
  return b
}

describe('send state on own messages', () => {
  it('queued: clock and "Wartet"', () => {
    renderRow(own('queued'))
    const msg = screen.getByTestId('message')
    expect(msg).toHaveAttribute('data-state', 'queued')
    const state = within(msg).getByTestId('send-state')
    expect(state).toHaveTextContent('Wartet')
    expect(state.querySelector('svg.lucide-clock')).not.toBeNull()
  })

  it('sending: spinner and "Wird gesendet…"', () => {
    renderRow(own('sending'))
    const state = screen.getByTestId('send-state')
    expect(state).toHaveTextContent('Wird gesendet…')
    expect(state.querySelector('svg.spin')).not.toBeNull()
  })

  it('sent: a single check named "Gesendet"', () => {
    renderRow(own('sent'))
    const state = screen.getByRole('img', { name: 'Gesendet' })
    expect(state.querySelector('svg.lucide-check')).not.toBeNull()
    expect(screen.queryByText('gelesen')).toBeNull()
  })

  it('read: double check, "gelesen" written out on the last read message', () => {
    renderRow(own('read'), true)
    const state = screen.getByTestId('send-state')
    expect(state.querySelector('svg.lucide-check-check')).not.toBeNull()
    expect(state).toHaveTextContent('gelesen')
    expect(screen.getByText('gelesen')).not.toHaveClass('sr-only')
  })

  it('read, not the last: the word is only for screen readers', () => {
    renderRow(own('read'), false)
    expect(screen.getByText('gelesen')).toHaveClass('sr-only')
  })

  it('failed: reason, "Erneut senden" calls retry_message, "Löschen" calls discard_message', async () => {
    const b = renderRow(own('failed'))
    const alert = screen.getByTestId('message-failed')
    expect(alert).toHaveTextContent('Nicht gesendet — Vom Server abgelehnt.')
    await userEvent.click(within(alert).getByRole('button', { name: 'Erneut senden' }))
    await waitFor(() => expect(b.fake.calls.some((c) => c.name === 'retry_message' && c.args[0] === 'm-failed')).toBe(true))
    await userEvent.click(within(alert).getByRole('button', { name: 'Löschen' }))
    await waitFor(() => expect(b.fake.calls.some((c) => c.name === 'discard_message' && c.args[0] === 'm-failed')).toBe(true))
  })

  it('each state is told apart by more than colour: distinct icon and accessible text', () => {
    const seen = new Set<string>()
    for (const s of ['queued', 'sending', 'sent', 'read', 'failed'] as const) {
      const { unmount } = renderWith(
        fake(),
        <MessageRow
          item={{ kind: 'message', key: s, message: own(s), own: true, groupStart: true, groupEnd: true }}
              flash={false}
          onEdit={() => undefined}
          showReadLabel
        />,
      )
      const el = screen.getByTestId('send-state')
      const icon = el.querySelector('svg')?.getAttribute('class') ?? ''
      const text = (el.textContent ?? '') + (el.getAttribute('aria-label') ?? '')
      seen.add(`${icon}|${text}`)
      expect(text.trim()).not.toBe('')
      unmount()
    }
    expect(seen.size).toBe(5)
  })
})

describe('edit and delete of own messages', () => {
  it('toolbar: Bearbeiten hands the message to the composer; Löschen asks, then calls delete_message', async () => {
    const b = fake()
    const edits: string[] = []
    const m = own('sent', { id: 'm-x' })
    renderWith(
      b,
      <MessageRow
        item={{ kind: 'message', key: m.id, message: m, own: true, groupStart: true, groupEnd: true }}
          flash={false}
        onEdit={(x) => edits.push(x.id)}
        showReadLabel={false}
      />,
    )
    await userEvent.click(screen.getByRole('button', { name: 'Bearbeiten' }))
    expect(edits).toEqual(['m-x'])
    await userEvent.click(screen.getByRole('button', { name: 'Löschen' }))
    const dialog = screen.getByRole('dialog', { name: 'Nachricht löschen?' })
    await userEvent.click(within(dialog).getByRole('button', { name: 'Löschen' }))
    await waitFor(() => expect(b.fake.calls.some((c) => c.name === 'delete_message' && c.args[0] === 'm-x')).toBe(true))
  })

  it('context menu on right click offers the same actions', async () => {
    const m = own('sent', { id: 'm-y' })
    renderWith(
      fake(),
      <MessageRow
        item={{ kind: 'message', key: m.id, message: m, own: true, groupStart: true, groupEnd: true }}
          flash={false}
        onEdit={() => undefined}
        showReadLabel={false}
      />,
    )
    await userEvent.pointer({ keys: '[MouseRight]', target: screen.getByTestId('message') })
    const menu = screen.getByRole('menu')
    expect(within(menu).getAllByRole('menuitem').map((i) => i.textContent)).toEqual(['Text kopieren', 'Bearbeiten', 'Löschen'])
  })

  it('shows the tombstone and no actions for a deleted message; "bearbeitet" for an edited one', () => {
    const { unmount } = renderWith(
      fake(),
      <MessageRow
        item={{ kind: 'message', key: 'd', message: own('sent', { deleted: true, content: '' }), own: true, groupStart: true, groupEnd: true }}
          flash={false}
        onEdit={() => undefined}
        showReadLabel={false}
      />,
    )
    expect(screen.getByText('Nachricht gelöscht')).toBeInTheDocument()
    expect(screen.queryByRole('toolbar')).toBeNull()
    unmount()
    renderWith(
      fake(),
      <MessageRow
        item={{ kind: 'message', key: 'e', message: own('sent', { edited: true }), own: true, groupStart: true, groupEnd: true }}
          flash={false}
        onEdit={() => undefined}
        showReadLabel={false}
      />,
    )
    expect(screen.getByText('bearbeitet')).toBeInTheDocument()
  })

  it('links open through openExternal, never in the webview', async () => {
    const b = fake()
    const m = own('sent', { content: 'Siehe https://www.example.de/plan.pdf, danke' })
    renderWith(
      b,
      <MessageRow
        item={{ kind: 'message', key: m.id, message: m, own: true, groupStart: true, groupEnd: true }}
          flash={false}
        onEdit={() => undefined}
        showReadLabel={false}
      />,
    )
    const link = screen.getByRole('link', { name: 'https://www.example.de/plan.pdf' })
    await userEvent.click(link)
    expect(b.fake.calls.find((c) => c.name === 'open_url')?.args).toEqual(['https://www.example.de/plan.pdf'])
    expect(window.location.href).not.toContain('example.de')
  })
})
