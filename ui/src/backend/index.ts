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
  const fake = createFakeBackend({ scenario: params.get('fake') ?? undefined, simulate: true })
  // Browser-only hook to drive the fake from the console or a browser test (never inside Tauri).
  ;(window as unknown as { __werkfunkFake?: unknown }).__werkfunkFake = fake.fake
  return fake
}
