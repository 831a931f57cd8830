import { describe, expect, it, vi } from 'vitest'

const m = vi.hoisted(() => ({
  invoke: vi.fn(),
  listen: vi.fn(),
}))
vi.mock('@tauri-apps/api/core', () => ({ invoke: m.invoke }))
vi.mock('@tauri-apps/api/event', () => ({ listen: m.listen }))

const { tauriBackend } = await import('../backend/tauri')

describe('tauriBackend', () => {
  it('calls commands with camelCase args as Tauri maps them', async () => {
    m.invoke.mockResolvedValue([])
    await tauriBackend.loadOlder('c1', '2026-01-01T00:00:00Z', 'm1', 50)
    expect(m.invoke).toHaveBeenLastCalledWith('load_older', {
      conversationId: 'c1',
      beforeCreatedAt: '2026-01-01T00:00:00Z',
      beforeId: 'm1',
      limit: 50,
    })
    await tauriBackend.createConversation('group', ['u1', 'u2'], 'Team')
    expect(m.invoke).toHaveBeenLastCalledWith('create_conversation', { kind: 'group', with: ['u1', 'u2'], title: 'Team' })
    await tauriBackend.openExternal('https://example.de')
    expect(m.invoke).toHaveBeenLastCalledWith('plugin:opener|open_url', { url: 'https://example.de' })
  })

  it('rejects with {code, message}, also when the error arrives as a JSON string or plain text', async () => {
    m.invoke.mockRejectedValueOnce({ code: 'offline', message: 'no network' })
    await expect(tauriBackend.conversations()).rejects.toEqual({ code: 'offline', message: 'no network' })
    m.invoke.mockRejectedValueOnce('{"code":"invalid_credentials","message":"bad"}')
    await expect(tauriBackend.signIn('a@b.de', 'x')).rejects.toEqual({ code: 'invalid_credentials', message: 'bad' })
    m.invoke.mockRejectedValueOnce('boom')
    await expect(tauriBackend.session()).rejects.toEqual({ code: 'unknown', message: 'boom' })
  })

  it('drops a listener whose unsubscribe ran before listen() resolved (StrictMode race)', async () => {
    const unlisten = vi.fn()
    let resolve: (f: () => void) => void = () => undefined
    m.listen.mockReturnValueOnce(new Promise((r) => (resolve = r)))
    const off = tauriBackend.on('engine:typing', () => undefined)
    off() // cleanup before the listener exists
    resolve(unlisten)
    await Promise.resolve()
    await Promise.resolve()
    expect(unlisten).toHaveBeenCalledTimes(1)
  })

  it('unsubscribes normally after listen() resolved and passes only the payload on', async () => {
    const unlisten = vi.fn()
    let handler: (e: { payload: unknown }) => void = () => undefined
    m.listen.mockImplementationOnce((_name: string, h: typeof handler) => {
      handler = h
      return Promise.resolve(unlisten)
    })
    const cb = vi.fn()
    const off = tauriBackend.on('engine:connectivity', cb)
    await Promise.resolve()
    handler({ payload: { state: { state: 'online' } } })
    expect(cb).toHaveBeenCalledWith({ state: { state: 'online' } })
    off()
    expect(unlisten).toHaveBeenCalledTimes(1)
  })
})
