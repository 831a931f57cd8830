import { fireEvent, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import type { Message } from '../backend'
import { Composer } from '../components/Composer'
import { keys } from '../state/keys'
import { fake, renderWith } from '../test/render'

function setup(opts: { draft?: string; editing?: Message | null } = {}) {
  const b = fake()
  if (opts.draft) void b.saveDraft('c-maria', opts.draft)
  const onEditMessage = vi.fn()
  const onEditDone = vi.fn()
  const r = renderWith(
    b,
    <Composer
      conversationId="c-maria"
      me={b.fake.me}
      placeholder="Nachricht an Maria Schulz"
      editing={opts.editing ?? null}
      onEditDone={onEditDone}
      onEditMessage={onEditMessage}
    />,
  )
  const box = screen.getByTestId('composer') as HTMLTextAreaElement
  const sends = () => b.fake.calls.filter((c) => c.name === 'send')
  return { b, box, sends, onEditMessage, onEditDone, ...r }
}

describe('composer', () => {
  it('Enter sends the trimmed text and clears the box; focus stays', async () => {
    const { box, sends } = setup()
    await userEvent.type(box, '  Hallo Frau Schulz  {Enter}')
    await waitFor(() => expect(sends()).toHaveLength(1))
    expect(sends()[0]?.args).toEqual(['c-maria', 'Hallo Frau Schulz'])
    expect(box.value).toBe('')
    expect(box).toHaveFocus()
  })

  it('Shift+Enter inserts a newline and does not send', async () => {
    const { box, sends } = setup()
    await userEvent.type(box, 'Zeile 1{Shift>}{Enter}{/Shift}Zeile 2')
    expect(box.value).toBe('Zeile 1\nZeile 2')
    expect(sends()).toHaveLength(0)
  })

  it('ignores Enter while an IME composes (keyCode 229 and isComposing)', async () => {
    const { box, sends } = setup()
    await userEvent.type(box, 'にほん')
    fireEvent.keyDown(box, { key: 'Enter', keyCode: 229 })
    fireEvent.keyDown(box, { key: 'Enter', keyCode: 13, isComposing: true })
    await new Promise((r) => setTimeout(r, 20))
    expect(sends()).toHaveLength(0)
    fireEvent.keyDown(box, { key: 'Enter', keyCode: 13 })
    await waitFor(() => expect(sends()).toHaveLength(1))
  })

  it('does not send an empty or blank message', async () => {
    const { box, sends } = setup()
    await userEvent.type(box, '   {Enter}')
    expect(sends()).toHaveLength(0)
    expect(screen.getByRole('button', { name: 'Senden' })).toBeDisabled()
  })

  it('restores the saved draft of the conversation', async () => {
    const { box } = setup({ draft: 'Ich komme morgen gegen' })
    await waitFor(() => expect(box.value).toBe('Ich komme morgen gegen'))
  })

  it('saves the draft when leaving the conversation, without waiting for the debounce', async () => {
    const { box, b, unmount } = setup()
    await userEvent.type(box, 'Halbfertig')
    unmount()
    await waitFor(() => expect(b.fake.calls.filter((c) => c.name === 'save_draft').at(-1)?.args).toEqual(['c-maria', 'Halbfertig']))
    expect(await b.draft('c-maria')).toBe('Halbfertig')
  })

  it('sends the typing command at most once per 3 seconds', async () => {
    const { box, b } = setup()
    await userEvent.type(box, 'Guten Morgen')
    expect(b.fake.calls.filter((c) => c.name === 'typing')).toHaveLength(1)
  })

  it('↑ in the empty composer edits the last own message; Esc cancels editing', async () => {
    const { box, qc, onEditMessage } = setup()
    const mine: Message = {
      id: 'm-own',
      conversation_id: 'c-maria',
      sender_id: 'u-jonas',
      sender_name: 'Jonas Becker',
      content: 'Bis Dienstag',
      created_at: '2026-03-10T09:00:00Z',
      updated_at: '2026-03-10T09:00:00Z',
      edited: false,
      deleted: false,
      state: 'read',
      error: null,
    }
    const other: Message = { ...mine, id: 'm-other', sender_id: 'u-maria', sender_name: 'Maria Schulz', created_at: '2026-03-10T09:05:00Z' }
    qc.setQueryData(keys.timeline('c-maria'), { messages: [mine, other], hasOlder: false })
    box.focus()
    await userEvent.keyboard('{ArrowUp}')
    expect(onEditMessage).toHaveBeenCalledWith(mine)
  })

  it('in edit mode Enter saves through edit_message and Esc cancels', async () => {
    const editing: Message = {
      id: 'm-own',
      conversation_id: 'c-maria',
      sender_id: 'u-jonas',
      sender_name: 'Jonas Becker',
      content: 'Bis Dienstag',
      created_at: '2026-03-10T09:00:00Z',
      updated_at: '2026-03-10T09:00:00Z',
      edited: false,
      deleted: false,
      state: 'read',
      error: null,
    }
    const { box, b, onEditDone } = setup({ editing })
    await waitFor(() => expect(box.value).toBe('Bis Dienstag'))
    expect(screen.getByTestId('editing-bar')).toHaveTextContent('Nachricht bearbeiten')
    await userEvent.type(box, ', 10 Uhr{Enter}')
    await waitFor(() => expect(b.fake.calls.find((c) => c.name === 'edit_message')).toBeTruthy())
    // the fake rejects unknown ids; the call's arguments are what matters here
    expect(b.fake.calls.find((c) => c.name === 'edit_message')?.args).toEqual(['m-own', 'Bis Dienstag, 10 Uhr'])
    await userEvent.keyboard('{Escape}')
    await waitFor(() => expect(onEditDone).toHaveBeenCalled())
  })

  it('gives the text back with a reason when the engine refuses the message', async () => {
    const { box, b } = setup()
    b.send = () => Promise.reject({ code: 'invalid_input', message: 'too long' })
    await userEvent.type(box, 'Text{Enter}')
    expect(await screen.findByRole('alert')).toHaveTextContent('Senden fehlgeschlagen: Die Eingabe ist ungültig.')
    expect(box.value).toBe('Text')
  })
})
