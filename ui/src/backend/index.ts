import type { Backend } from './backend'
import { tauriBackend } from './tauri'

export type { Backend } from './backend'
export { toAppError } from './backend'
export * from './types'

/** Whether the page runs inside the Tauri app. */
export function isTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window
}

/**
 * Inside Tauri: the real engine. In a plain browser (npm run dev, Chromium screenshots): the
 * fake, loaded as its own chunk so the app never carries it.
 */
export async function defaultBackend(): Promise<Backend> {
  if (isTauri()) return tauriBackend
  const { createFakeBackend } = await import('./fake')
  const params = new URLSearchParams(window.location.search)
  const fake = createFakeBackend({ scenario: params.get('fake') ?? undefined, simulate: true })
  // Browser-only hook to drive the fake from the console or a browser test (never inside Tauri).
  ;(window as unknown as { __werkfunkFake?: unknown }).__werkfunkFake = fake.fake
  return fake
}
