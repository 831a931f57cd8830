// A small W3C WebDriver client over fetch, enough to drive the app through tauri-driver
// (which hands each session to WebKitWebDriver, which starts the real app binary).

import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import net from 'node:net'

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

/** Starts tauri-driver on free ports; stop() sends SIGTERM (never SIGKILL: its WebKitWebDriver would be orphaned). */
export async function startDriver(log) {
  const port = await freePort()
  const nativePort = await freePort()
  const child = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort), '--native-driver', '/usr/bin/WebKitWebDriver'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.on('data', (d) => log?.(`[driver ${port}] ${d}`))
  child.stderr.on('data', (d) => log?.(`[driver ${port}] ${d}`))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/status`)
      if (r.ok) break
    } catch {}
    await sleep(100)
  }
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000)])
    },
  }
}

export class WebDriverError extends Error {}

export class Session {
  constructor(base, id) {
    this.base = base
    this.id = id
  }

  static async start(driverUrl, application, args) {
    const body = { capabilities: { alwaysMatch: { 'tauri:options': { application, args } } } }
    const r = await call('POST', `${driverUrl}/session`, body)
    const session = new Session(driverUrl, r.value?.sessionId ?? r.sessionId)
    await session.cmd('POST', '/timeouts', { script: 60_000 })
    return session
  }

  async cmd(method, path, body) {
    return (await call(method, `${this.base}/session/${this.id}${path}`, body)).value
  }

  async quit() {
    try {
      await call('DELETE', `${this.base}/session/${this.id}`)
    } catch {}
  }

  async find(css) {
    const v = await this.cmd('POST', '/element', { using: 'css selector', value: css })
    return new Element(this, v[ELEMENT])
  }

  async findAll(css) {
    const v = await this.cmd('POST', '/elements', { using: 'css selector', value: css })
    return v.map((e) => new Element(this, e[ELEMENT]))
  }

  /** Waits until `css` matches an element (and `predicate(element)` holds). */
  async waitFor(css, { timeout = 20_000, predicate, what } = {}) {
    const deadline = Date.now() + timeout
    let last
    while (Date.now() < deadline) {
      try {
        const all = await this.findAll(css)
        for (const el of all) {
          if (!predicate || (await predicate(el))) return el
        }
      } catch (e) {
        last = e
      }
      await sleep(150)
    }
    throw new WebDriverError(`timed out waiting for ${what ?? css}${last ? `: ${last.message}` : ''}`)
  }

  /** Waits until `fn()` returns a truthy value and returns it. */
  async until(fn, { timeout = 20_000, what = 'a condition' } = {}) {
    const deadline = Date.now() + timeout
    let last
    while (Date.now() < deadline) {
      try {
        const v = await fn()
        if (v) return v
      } catch (e) {
        last = e
      }
      await sleep(150)
    }
    throw new WebDriverError(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`)
  }

  async exec(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args })
  }

  async execAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args })
  }

}

export class Element {
  constructor(session, id) {
    this.session = session
    this.id = id
  }
  cmd(method, path, body) {
    return this.session.cmd(method, `/element/${this.id}${path}`, body)
  }
  click() {
    return this.cmd('POST', '/click', {})
  }
  type(text) {
    return this.cmd('POST', '/value', { text })
  }
  clear() {
    return this.cmd('POST', '/clear', {})
  }
  text() {
    return this.cmd('GET', '/text')
  }
  attr(name) {
    return this.cmd('GET', `/attribute/${name}`)
  }
  prop(name) {
    return this.cmd('GET', `/property/${name}`)
  }
  async find(css) {
    const v = await this.cmd('POST', '/element', { using: 'css selector', value: css })
    return new Element(this.session, v[ELEMENT])
  }
  async findAll(css) {
    const v = await this.cmd('POST', '/elements', { using: 'css selector', value: css })
    return v.map((e) => new Element(this.session, e[ELEMENT]))
  }
}

export const Keys = { ENTER: '\uE007', SHIFT: '\uE008', ESCAPE: '\uE00C', ARROW_UP: '\uE013' }

async function call(method, url, body) {
  const r = await fetch(url, {
    method,
    // No WebDriver command here takes a minute; a hung one fails the step instead of the run.
    signal: AbortSignal.timeout(90_000),
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = await r.json().catch(() => ({}))
  if (!r.ok) {
    const v = json.value ?? {}
    throw new WebDriverError(`${method} ${url.replace(/.*\/session\/[^/]+/, '')}: ${v.error ?? r.status} ${v.message ?? ''}`.trim())
  }
  return json
}
