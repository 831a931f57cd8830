import type { Backend } from './backend'
import { createFakeBackend } from './fake'
import { tauriBackend } from './tauri'

export type { Backend } from './backend'
export { toAppError } from './backend'
export * from './types'

/** Inside Tauri: the real engine. In a plain browser (npm run dev, Chromium screenshots): the fake. */
export function isTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window
}

export function defaultBackend(): Backend {
  if (isTauri()) return tauriBackend
  const params = new URLSearchParams(window.location.search)
  return createFakeBackend({ scenario: params.get('fake') ?? undefined, simulate: true })
}
