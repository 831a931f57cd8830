import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import type { Connectivity } from '../backend'
import { useDebouncedConnectivity } from '../components/OfflineBanner'
import { dndUntil } from '../components/SettingsDialog'
import { resolveLanguage } from '../i18n'
import { fake, renderApp } from '../test/render'

function Probe({ c }: { c: Connectivity }) {
  const shown = useDebouncedConnectivity(c, 1500)
  return <span data-testid="probe">{shown?.state ?? 'none'}</span>
}

describe('offline banner', () => {
  it('ignores blips shorter than the debounce and shows longer outages; online hides at once', () => {
    vi.useFakeTimers()
    const { rerender } = render(<Probe c={{ state: 'online' }} />)
    rerender(<Probe c={{ state: 'offline', since: '2026-01-01T00:00:00Z' }} />)
    act(() => vi.advanceTimersByTime(1000))
    expect(screen.getByTestId('probe')).toHaveTextContent('online')
    rerender(<Probe c={{ state: 'online' }} />)
    act(() => vi.advanceTimersByTime(2000))
    expect(screen.getByTestId('probe')).toHaveTextContent('online')
    rerender(<Probe c={{ state: 'offline', since: '2026-01-01T00:00:00Z' }} />)
    act(() => vi.advanceTimersByTime(1600))
    expect(screen.getByTestId('probe')).toHaveTextContent('offline')
    rerender(<Probe c={{ state: 'connecting', attempt: 2 }} />)
    expect(screen.getByTestId('probe')).toHaveTextContent('connecting')
    rerender(<Probe c={{ state: 'online' }} />)
    expect(screen.getByTestId('probe')).toHaveTextContent('online')
    vi.useRealTimers()
  })

  it('is driven by engine:connectivity and reads as a status', async () => {
    const b = fake()
    renderApp(b)
    await screen.findAllByTestId('conversation-item')
    act(() => b.fake.emit('engine:connectivity', { state: { state: 'offline', since: new Date().toISOString() } }))
    const banner = await screen.findByTestId('offline-banner', {}, { timeout: 3000 })
    expect(banner).toHaveTextContent('Offline — Nachrichten werden gesendet, sobald die Verbindung zurück ist')
    expect(banner.closest('[role="status"]')).not.toBeNull()
    act(() => b.fake.emit('engine:connectivity', { state: { state: 'online' } }))
    await waitFor(() => expect(screen.queryByTestId('offline-banner')).toBeNull())
  })
})

describe('notification centre', () => {
  it('shows the unread count on the bell, opens the conversation on click, marks all read', async () => {
    const b = fake()
    renderApp(b)
    const bell = await screen.findByTestId('notification-bell')
    await waitFor(() => expect(screen.getByTestId('bell-badge')).toHaveTextContent('2'))
    expect(bell).toHaveAccessibleName('Benachrichtigungen, 2 ungelesen')
    await userEvent.click(bell)
    const panel = screen.getByTestId('notification-panel')
    // Each names its conversation (the server's own title is only "Neue Nachricht").
    const items = within(panel).getAllByTestId('notification-item')
    expect(items[0]).toHaveTextContent(/^Maria Schulz/)
    expect(items[1]).toHaveTextContent(/^Badsanierung Lindenstraße 12/)
    await userEvent.click(items[1]!)
    expect(await screen.findByRole('heading', { name: 'Badsanierung Lindenstraße 12' })).toBeInTheDocument()
    await waitFor(() => expect(screen.getByTestId('bell-badge')).toHaveTextContent('1'))
    await userEvent.click(bell)
    await userEvent.click(screen.getByTestId('notifications-mark-all'))
    await waitFor(() => expect(screen.queryByTestId('bell-badge')).toBeNull())
  })
})

describe('search', () => {
  it('Ctrl+F focuses the search; hits are highlighted and open the message in its conversation', async () => {
    const b = fake()
    renderApp(b)
    await screen.findAllByTestId('conversation-item')
    await userEvent.keyboard('{Control>}f{/Control}')
    const input = screen.getByTestId('search-input')
    expect(input).toHaveFocus()
    await userEvent.type(input, 'wallbox')
    await waitFor(() => expect(screen.getAllByTestId('search-hit')[0]!.querySelector('mark')).toHaveTextContent(/^wallbox$/i))
    const hits = screen.getAllByTestId('search-hit')
    expect(hits.every((h) => h.textContent?.toLowerCase().includes('wallbox'))).toBe(true)
    await userEvent.click(hits[0]!)
    expect(await screen.findByRole('heading', { name: 'Petra Wagner' })).toBeInTheDocument()
  })
})

describe('dialogs and keyboard', () => {
  it('Ctrl+K opens the switcher, Enter opens the chosen conversation, Esc closes dialogs', async () => {
    renderApp(fake())
    await screen.findAllByTestId('conversation-item')
    await userEvent.keyboard('{Control>}k{/Control}')
    const input = await screen.findByTestId('switcher-input')
    await userEvent.type(input, 'thom{Enter}')
    expect(await screen.findByRole('heading', { name: 'Thomas Müller' })).toBeInTheDocument()
    await userEvent.click(screen.getByTestId('settings-button'))
    expect(screen.getByRole('dialog', { name: 'Einstellungen' })).toBeInTheDocument()
    await userEvent.keyboard('{Escape}')
    expect(screen.queryByRole('dialog')).toBeNull()
  })

  it('new conversation finds people by name and opens the created chat', async () => {
    const b = fake({ scenario: 'empty' })
    renderApp(b)
    await userEvent.click(await screen.findByRole('button', { name: 'Unterhaltung starten' }))
    const dialog = screen.getByTestId('new-conversation-dialog')
    await userEvent.type(within(dialog).getByTestId('people-search'), 'luk')
    // the search is debounced: wait until the list shows only the match
    await waitFor(() => expect(within(dialog).getAllByTestId('person-option')).toHaveLength(1))
    await userEvent.click(within(dialog).getByRole('radio', { name: /Lukas Hoffmann/ }))
    expect(within(dialog).getByRole('radio', { name: /Lukas Hoffmann/ })).toHaveAttribute('aria-checked', 'true')
    await userEvent.click(within(dialog).getByTestId('create-conversation'))
    expect(await screen.findByRole('heading', { name: 'Lukas Hoffmann' })).toBeInTheDocument()
    expect(b.fake.calls.find((c) => c.name === 'create_conversation')?.args).toEqual(['direct', ['u-lukas'], null])
  })

  it('warns with the number of unsent messages before wiping this device', async () => {
    const b = fake()
    renderApp(b)
    await userEvent.click(await screen.findByTestId('settings-button'))
    await userEvent.click(screen.getByTestId('wipe-device'))
    expect(await screen.findByTestId('wipe-unsent-warning')).toHaveTextContent(
      'Achtung: 2 Nachrichten wurden noch nicht gesendet und gehen verloren.',
    )
    await userEvent.click(screen.getByTestId('confirm-wipe'))
    expect(await screen.findByTestId('sign-in-email')).toBeInTheDocument()
    expect(b.fake.calls.find((c) => c.name === 'sign_out')?.args).toEqual([true])
  })

  it('signs in and maps an error code to German text', async () => {
    renderApp(fake({ scenario: 'signed-out' }))
    await userEvent.type(await screen.findByTestId('sign-in-email'), 'jonas@becker-elektro.de')
    await userEvent.type(screen.getByTestId('sign-in-password'), '123')
    await userEvent.click(screen.getByTestId('sign-in-submit'))
    expect(await screen.findByTestId('sign-in-error')).toHaveTextContent('E-Mail-Adresse oder Passwort stimmt nicht.')
    await userEvent.type(screen.getByTestId('sign-in-password'), '456789')
    await userEvent.click(screen.getByTestId('sign-in-submit'))
    expect(await screen.findAllByTestId('conversation-item')).not.toHaveLength(0)
  })
})

describe('settings helpers', () => {
  it('"bis morgen" means tomorrow 08:00 local; 1 h is an hour from now', () => {
    const now = new Date('2026-03-28T21:00:00+01:00')
    expect(new Date(dndUntil('tomorrow', now)!).toString()).toContain('Sun Mar 29 2026 08:00:00 GMT+0200')
    expect(dndUntil('1h', now)).toBe('2026-03-28T21:00:00.000Z')
    expect(dndUntil('off', now)).toBeNull()
  })
  it('language "system" follows the OS locale', () => {
    expect(resolveLanguage('system', 'en-US')).toBe('en')
    expect(resolveLanguage('system', 'de-AT')).toBe('de')
    expect(resolveLanguage('system', 'fr-FR')).toBe('de')
    expect(resolveLanguage('en', 'de-DE')).toBe('en')
  })
})

describe('interface details from docs/app-commands.md', () => {
  it('leaving keeps the conversation readable, without a composer', async () => {
    const b = fake()
    renderApp(b)
    await userEvent.click(await screen.findByRole('button', { name: /^Team Becker Elektro/ }))
    await userEvent.click(screen.getByTestId('members-button'))
    await userEvent.click(await screen.findByTestId('leave-conversation'))
    await userEvent.click(screen.getByTestId('confirm-leave'))
    expect(await screen.findByTestId('left-note')).toHaveTextContent('Du bist nicht mehr Mitglied')
    expect(screen.queryByTestId('composer')).toBeNull()
    expect(screen.getByText('Liegt im Transporter.')).toBeInTheDocument()
    const item = screen.getAllByTestId('conversation-item').find((i) => i.dataset.conversationId === 'c-team')!
    await waitFor(() => expect(item.textContent).toContain('Verlassen'))
    expect(item).toHaveAccessibleName(/^Team Becker Elektro, Verlassen/)
  })

  it('a session answered with signed_out shows the sign-in screen', async () => {
    const b = fake()
    b.session = () => Promise.reject({ code: 'signed_out', message: 'nobody' })
    renderApp(b)
    expect(await screen.findByTestId('sign-in-email')).toBeInTheDocument()
  })

  it('people search while offline says so instead of "nobody found"', async () => {
    const b = fake({ scenario: 'offline' })
    renderApp(b)
    await userEvent.click(await screen.findByTestId('new-conversation-button'))
    expect(await within(screen.getByTestId('new-conversation-dialog')).findByRole('alert')).toHaveTextContent(
      'Keine Verbindung. Bitte später erneut versuchen.',
    )
  })
})
