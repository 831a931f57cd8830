// End to end: two real Werkfunk apps (two profiles) on one real server, under Xvfb, driven by
// WebDriver (tauri-driver + WebKitWebDriver), with notifications caught on the real D-Bus
// session bus of this run. `cargo xtask test` runs it inside `xvfb-run dbus-run-session`.
//
// Environment (set by xtask): WERKFUNK_APP (the app binary), WERKFUNK_SERVER_BIN,
// WERKFUNK_DATABASE_URL, WERKFUNK_JWT_SECRET, WERKFUNK_SCREENSHOTS (folder for the screenshots).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

import { Session, startDriver, freePort, Keys } from './webdriver.mjs'
import { startNotificationServer } from './notification-server.mjs'
import { startTrayHost, readBadge } from './tray-host.mjs'
import { Server } from './server.mjs'

const env = (k) => {
  const v = process.env[k]
  if (!v) throw new Error(`${k} is not set (run through cargo xtask test)`)
  return v
}
const APP = env('WERKFUNK_APP')
const SHOTS = process.env.WERKFUNK_SCREENSHOTS
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const verbose = !!process.env.WERKFUNK_E2E_VERBOSE
const log = (s) => verbose && process.stderr.write(s)

const PASSWORD = 'werkfunk-e2e-1'

/** One app instance: its driver, its profile folder and its WebDriver session. */
class App {
  /** `x`: where its window sits on the (2560 px wide) screen, so the two never overlap. */
  constructor(name, server, profile, x) {
    Object.assign(this, { name, server, profile, x })
  }
  args() {
    return ['--profile', this.profile, '--url', this.server.url, '--anon-key', this.server.anonKey]
  }
  async launch() {
    this.driver ??= await startDriver(log)
    this.s = await Session.start(this.driver.url, APP, this.args())
    await this.s.cmd('POST', '/window/rect', { x: this.x, y: 0, width: 1280, height: 800 })
    await this.s.waitFor('body', { what: `${this.name}'s window` })
    return this.s
  }
  async quit() {
    await this.s?.quit()
    this.s = undefined
  }
  async stop() {
    await this.quit()
    await this.driver?.stop()
  }
}

/** The unread count `app`'s tray icon shows now (`null`: no badge), read off its pixels. */
async function trayCount(tray, app) {
  const item = await app.s.until(() => tray.itemOf(app.profile), { what: `${app.name}'s tray icon` })
  return readBadge(await tray.icon(item))
}

async function byTestId(s, id, opts) {
  return s.waitFor(`[data-testid="${id}"]`, { what: id, ...opts })
}

async function signIn(app, user) {
  const s = app.s
  await (await byTestId(s, 'sign-in-email')).type(user.email)
  await (await byTestId(s, 'sign-in-password')).type(user.password)
  await (await byTestId(s, 'sign-in-submit')).click()
  await byTestId(s, 'conversation-item', { timeout: 60_000 })
}

async function openConversation(s, id) {
  const item = await s.waitFor(`[data-testid="conversation-item"][data-conversation-id="${id}"]`, { what: `conversation ${id}` })
  await item.click()
  await byTestId(s, 'composer')
}

async function messages(s) {
  return s.exec(`return [...document.querySelectorAll('[data-testid="message"]')].map(m => ({
    id: m.dataset.messageId, state: m.dataset.state, text: m.innerText }))`)
}

async function composerValue(s) {
  return s.exec(`return document.querySelector('[data-testid="composer"]')?.value ?? null`)
}

/** axe-core in the page: the serious and critical violations. */
async function axe(s, where) {
  // The page's CSP refuses inline scripts (as it should): axe runs in WebDriver's own script.
  const result = await s.execAsync(
    `const done = arguments[arguments.length - 1];
     ${axeSource};
     const axeRun = (typeof axe !== 'undefined' ? axe : window.axe);
     axeRun.run(document)
       .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
         .map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))))
       .catch(e => done([{ id: 'axe-error', impact: 'critical', nodes: [String(e)] }]))`,
  )
  assert.deepEqual(result, [], `accessibility violations on ${where}: ${JSON.stringify(result, null, 1)}`)
}

/**
 * Writes a screenshot of `app`'s window (1280×800) as <WERKFUNK_SCREENSHOTS>/<name>.png, taken
 * from the X display: WebKitWebDriver's own screenshot command never answers for a wry window.
 */
async function shot(app, name) {
  if (!SHOTS) return
  mkdirSync(SHOTS, { recursive: true })
  await sleep(400) // let transitions and the caret settle
  execFileSync('/usr/bin/import', ['-window', 'root', '-crop', `1280x800+${app.x}+0`, '+repage', join(SHOTS, `${name}.png`)])
}

const LOOKS = [
  { lang: 'de', theme: 'light' },
  { lang: 'en', theme: 'light' },
  { lang: 'de', theme: 'dark' },
  { lang: 'en', theme: 'dark' },
]

/** Reloads `app`'s page with `params` (`lang`, `theme`, `c` = open conversation, `dialog`). */
async function visit(app, params) {
  await app.s.cmd('POST', '/url', { url: `tauri://localhost/?${new URLSearchParams(params)}` })
  await app.s.waitFor('body', { what: 'the page after navigating' })
}

/** A screenshot and an accessibility scan of what `app` shows now. */
async function look(app, screen, { lang, theme }) {
  await axe(app.s, `${screen} (${lang}, ${theme})`)
  await shot(app, `${screen}-${lang}-${theme}`)
}

test('two apps on one server: live messages, typing, read receipts, offline queue, notifications', async (t) => {
  const notifications = await startNotificationServer()
  const tray = await startTrayHost()
  const port = await freePort()
  const server = new Server({
    binary: env('WERKFUNK_SERVER_BIN'),
    databaseUrl: env('WERKFUNK_DATABASE_URL'),
    secret: env('WERKFUNK_JWT_SECRET'),
    port,
  })
  await server.start()
  const tmp = mkdtempSync(join(tmpdir(), 'werkfunk-e2e-'))
  // The steps build on each other: after the first failure the rest are skipped, not failed.
  let broken = false
  const step = (name, fn) =>
    t.test(name, { skip: broken && 'an earlier step failed' }, async () => {
      try {
        await fn()
      } catch (e) {
        broken = true
        // What each window showed, to read the failure without a rerun.
        for (const app of [a, b]) {
          const text = await app.s?.exec('return document.body.innerText').catch(() => '(no window)')
          e.message += `\n--- ${app.name}'s window: ${String(text).slice(0, 800)}`
          if (SHOTS) await shot(app, `failure-${app.name}`).catch(() => undefined)
        }
        throw e
      }
    })
  const a = new App('A', server, join(tmp, 'meister'), 0)
  const b = new App('B', server, join(tmp, 'kundin'), 1280)
  try {
    const tag = Date.now().toString(36)
    const meister = await server.signUp(`meister-${tag}@werkfunk.test`, PASSWORD, 'Meister Müller', 'tradesperson')
    const kundin = await server.signUp(`kundin-${tag}@werkfunk.test`, PASSWORD, 'Kundin Schmidt', 'customer')
    const conversation = await server.rpc(meister.token, 'create_conversation', {
      p_type: 'project',
      p_title: 'Badsanierung Schmidt',
      p_member_ids: [kundin.id],
    })

    await step('both apps start and sign in', async () => {
      await a.launch()
      await b.launch()
      await byTestId(a.s, 'sign-in-email')
      for (const l of LOOKS) {
        await visit(a, l)
        await byTestId(a.s, 'sign-in-email')
        await look(a, 'sign-in', l)
      }
      await visit(a, { lang: 'de', theme: 'light' })
      await signIn(a, meister)
      await signIn(b, kundin)
      assert.equal(await a.s.exec('return document.title'), 'Werkfunk')
      // Each app's tray icon registered with the panel (this run's watcher), with its menu.
      for (const app of [a, b]) {
        const item = await app.s.until(() => tray.itemOf(app.profile), { what: `${app.name}'s tray icon` })
        assert.deepEqual(await tray.menuLabels(item), ['Öffnen', 'Nicht stören', '1 Stunde', 'Bis morgen', 'Aus', 'Beenden'])
      }
      assert.equal(await trayCount(tray, b), null, "B's tray shows no count before anything arrived")
    })

    const first = 'Ich komme morgen um 8 Uhr mit den Fliesen.'
    await step("A sends; it appears in B's list with an unread badge, and B is notified", async () => {
      await openConversation(a.s, conversation)
      const composer = await byTestId(a.s, 'composer')
      await composer.type(first)
      await composer.type(Keys.ENTER)
      await a.s.until(async () => (await messages(a.s)).some((m) => m.text.includes(first) && ['sent', 'read'].includes(m.state)), {
        what: "A's message sent",
      })
      const badge = await b.s.waitFor(`[data-conversation-id="${conversation}"] [data-testid="unread-badge"]`, { what: "B's unread badge" })
      assert.equal((await badge.text()).trim(), '1')
      await b.s.until(async () => (await trayCount(tray, b)) === 1, { what: "1 on B's tray icon" })
      assert.equal(await trayCount(tray, a), null, "the sender's tray shows no count")
      const note = await b.s.until(() => notifications.server.received.find((n) => n.body.includes(first)), { what: "B's notification" })
      assert.equal(note.summary, 'Meister Müller')
      assert.equal(note.appName, 'Werkfunk')
      assert.ok(note.actions.includes('default'), 'the notification has a default action')
      assert.equal(note.hints['desktop-entry'], 'werkfunk')
    })

    await step("clicking B's notification opens B's window on that conversation; A sees 'gelesen'", async () => {
      const note = notifications.server.received.find((n) => n.body.includes(first))
      notifications.server.click(note.id)
      await byTestId(b.s, 'composer')
      await b.s.until(async () => (await messages(b.s)).some((m) => m.text.includes(first)), { what: 'the message in B\'s open conversation' })
      await b.s.until(async () => (await trayCount(tray, b)) === null, { what: "the count gone from B's tray once read" })
      await a.s
        .until(async () => (await messages(a.s)).find((m) => m.text.includes(first))?.state === 'read', {
          what: "'gelesen' on A's message",
        })
        .catch(async (e) => {
          const members = await a.s.execAsync(
            `const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke('members', { conversationId: arguments[0] }).then(done, (e) => done(String(e)))`,
            [conversation],
          )
          const timeline = await a.s.execAsync(
            `const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke('timeline', { conversationId: arguments[0], limit: 5 }).then(done, (e) => done(String(e)))`,
            [conversation],
          )
          throw new Error(`${e.message}; A's members: ${JSON.stringify(members)}; timeline: ${JSON.stringify(timeline)}; DOM: ${JSON.stringify(await messages(a.s))}`)
        })
      await axe(b.s, 'chat')
    })

    await step('B types; A sees "… tippt"', async () => {
      const composer = await byTestId(b.s, 'composer')
      await composer.type('Pass')
      const indicator = await byTestId(a.s, 'typing-indicator', { predicate: async (e) => /tippt|typing/.test(await e.text()) })
      assert.match(await indicator.text(), /^Kundin tippt/)
      // Select all and delete, as a user would (a WebDriver clear bypasses React's onChange).
      await composer.type('\uE009a\uE000\uE003')
    })

    const queued = ['Erste Nachricht ohne Netz', 'Zweite Nachricht ohne Netz']
    const draft = 'Entwurf für später'
    const offline = async (s) => (await messages(s)).filter((m) => queued.some((q) => m.text.includes(q)))
    await step('the server goes away: both show the offline banner; A queues two messages and a draft', async () => {
      await server.stop()
      await byTestId(a.s, 'offline-banner', { timeout: 40_000 })
      await byTestId(b.s, 'offline-banner', { timeout: 40_000 })
      await visit(a, { lang: 'de', theme: 'light', c: conversation })
      let composer = await byTestId(a.s, 'composer')
      for (const text of queued) {
        await composer.type(text)
        await composer.type(Keys.ENTER)
      }
      const bothQueued = async () => {
        const mine = await offline(a.s)
        return mine.length === 2 && mine.every((m) => m.state === 'queued')
      }
      await a.s.until(bothQueued, { what: 'two queued messages' })
      // The offline screen as a user sees it on site: the banner and what waits to go out.
      for (const l of LOOKS) {
        await visit(a, { ...l, c: conversation })
        await byTestId(a.s, 'offline-banner')
        await a.s.until(bothQueued, { what: 'the queued messages after a reload' })
        await look(a, 'offline', l)
      }
      await visit(a, { lang: 'de', theme: 'light', c: conversation })
      composer = await byTestId(a.s, 'composer')
      await composer.type(draft)
      await sleep(1500) // the draft is saved as one types (debounced)
    })

    await step('A quits and starts again: the draft and the queued messages are still there', async () => {
      await a.quit()
      await a.launch()
      await openConversation(a.s, conversation)
      await a.s.until(async () => (await composerValue(a.s)) === draft, { what: 'the draft restored' })
      const mine = await offline(a.s)
      assert.equal(mine.length, 2)
      assert.ok(mine.every((m) => m.state === 'queued'), JSON.stringify(mine))
      await byTestId(a.s, 'offline-banner')
    })

    await step('the server comes back: both messages arrive once, in order', async () => {
      await server.start()
      await b.s.until(async () => (await offline(b.s)).length === 2, { timeout: 60_000, what: 'the queued messages at B' })
      const atB = await offline(b.s)
      assert.ok(atB[0].text.includes(queued[0]) && atB[1].text.includes(queued[1]), 'in order')
      const onServer = (await server.messages(meister.token, conversation)).map((m) => m.content)
      assert.deepEqual(onServer, [first, ...queued], 'once each, in order, on the server')
      await a.s.until(async () => !(await a.s.findAll('[data-testid="offline-banner"]')).length, { what: 'the banner gone' })
    })

    await step('every screen, German and English, light and dark: no serious accessibility violation', async () => {
      for (const l of LOOKS) {
        await visit(a, { ...l, c: conversation })
        await byTestId(a.s, 'message')
        await look(a, 'chat', l)
        for (const dialog of ['new', 'members', 'settings', 'switcher']) {
          await visit(a, { ...l, c: conversation, dialog })
          await a.s.waitFor('[role="dialog"]', { what: `the ${dialog} dialog` })
          await sleep(300)
          await look(a, `dialog-${dialog}`, l)
        }
        await visit(a, l)
        const search = await byTestId(a.s, 'search-input')
        await search.type('Fliesen')
        await byTestId(a.s, 'search-hit')
        await look(a, 'search', l)
        await visit(b, { ...l, c: conversation })
        await (await byTestId(b.s, 'notification-bell')).click()
        await byTestId(b.s, 'notification-panel')
        await look(b, 'notifications', l)
      }
    })
  } finally {
    await a.stop()
    await b.stop()
    await server.stop()
    notifications.stop()
    tray.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
})
