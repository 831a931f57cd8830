import '@testing-library/jest-dom/vitest'
import { cleanup, configure } from '@testing-library/react'
import { afterEach } from 'vitest'
import '../i18n'
import i18n from '../i18n'

// jsdom has no layout: give the virtualised lists a viewport and their rows a height,
// and a ResizeObserver that never fires (TanStack/virtual#641, ui-anchors §3.2).
class ResizeObserverStub {
  observe() {}
  unobserve() {}
  disconnect() {}
}
;(globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = ResizeObserverStub

const VIEWPORT = 2000
Object.defineProperty(HTMLElement.prototype, 'clientHeight', {
  configurable: true,
  get(this: HTMLElement) {
    return this.classList.contains('timeline') || this.classList.contains('conv-list') ? VIEWPORT : 0
  },
})
Object.defineProperty(HTMLElement.prototype, 'clientWidth', {
  configurable: true,
  get(this: HTMLElement) {
    return this.classList.contains('timeline') || this.classList.contains('conv-list') ? 800 : 0
  },
})
Object.defineProperty(HTMLElement.prototype, 'offsetHeight', {
  configurable: true,
  get(this: HTMLElement) {
    return this.classList.contains('vrow') ? 40 : 0
  },
})
// The scroll height of a list is the height its virtual content declares.
Object.defineProperty(HTMLElement.prototype, 'scrollHeight', {
  configurable: true,
  get(this: HTMLElement) {
    const inner = this.firstElementChild as HTMLElement | null
    const h = inner ? parseFloat(inner.style.height) : NaN
    return Number.isFinite(h) ? Math.max(h, this.clientHeight) : this.clientHeight
  },
})
// Like a browser: scrollTop is clamped and a change fires 'scroll' (asynchronously).
const tops = new WeakMap<Element, number>()
Object.defineProperty(HTMLElement.prototype, 'scrollTop', {
  configurable: true,
  get(this: HTMLElement) {
    return tops.get(this) ?? 0
  },
  set(this: HTMLElement, v: number) {
    const max = Math.max(0, this.scrollHeight - this.clientHeight)
    const next = Math.max(0, Math.min(v, max))
    if (next === (tops.get(this) ?? 0)) return
    tops.set(this, next)
    queueMicrotask(() => this.dispatchEvent(new Event('scroll')))
  },
})
Element.prototype.scrollTo = function scrollTo(this: Element, a?: ScrollToOptions | number, b?: number) {
  const top = typeof a === 'number' ? b : a?.top
  if (typeof top === 'number') {
    ;(this as HTMLElement).scrollTop = top
  }
}
Element.prototype.scrollIntoView = function scrollIntoView() {}
if (!window.matchMedia) {
  window.matchMedia = (q: string) =>
    ({ matches: false, media: q, onchange: null, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {}, dispatchEvent: () => false }) as MediaQueryList
}

// The OS locale of the suite: German (settings.language = 'system' resolves to it).
Object.defineProperty(window.navigator, 'language', { configurable: true, get: () => 'de-DE' })
void i18n.changeLanguage('de')

// The machine is shared with Rust builds: give async queries room.
configure({ asyncUtilTimeout: 10_000 })

afterEach(() => {
  cleanup()
  window.localStorage.clear()
})
