// `cargo xtask bench desktop`: the app beside a blank Tauri v2 window from the same
// dependencies, in the same run. Figures as Markdown to WERKFUNK_BENCH_OUT.
//
// - cold start to the cached conversation list visible (through WebDriver, so both include
//   the automation's own start-up), median of 3;
// - idle memory, PSS (and RSS) summed over the app and its WebKit processes, 20 s after
//   start, with 50 conversations and 10,000 messages cached (the blank window: an empty page);
// - memory after scrolling through the 10,000-message conversation to its start and back;
// - the .deb's size.

import { readFileSync, readdirSync, statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { spawn, execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { Session, startDriver, freePort } from './webdriver.mjs'
import { Server } from './server.mjs'

const env = (k) => {
  const v = process.env[k]
  if (!v) throw new Error(`${k} is not set (run through cargo xtask bench desktop)`)
  return v
}
const APP = env('WERKFUNK_APP')
const BLANK = env('WERKFUNK_BLANK')
const CLI = env('WERKFUNK_CLI')
const PASSWORD = 'werkfunk-bench-1'

/** The process tree under `root` (the app and the WebKit processes it started). */
function tree(root) {
  const children = new Map()
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (!children.has(ppid)) children.set(ppid, [])
      children.get(ppid).push(Number(pid))
    } catch {}
  }
  const out = []
  const walk = (p) => {
    out.push(p)
    for (const c of children.get(p) ?? []) walk(c)
  }
  walk(root)
  return out
}

/** PSS and RSS in MB summed over `pids`. */
function memory(pids) {
  let pss = 0
  let rss = 0
  for (const pid of pids) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
      pss += Number(rollup.match(/^Pss:\s+(\d+)/m)?.[1] ?? 0)
      rss += Number(rollup.match(/^Rss:\s+(\d+)/m)?.[1] ?? 0)
    } catch {}
  }
  return { pss: pss / 1024, rss: rss / 1024, processes: pids.length }
}

/** The pid of the process whose command line has `needle` (the app WebKitWebDriver started). */
function pidWith(needle) {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) return Number(pid)
    } catch {}
  }
  return null
}

async function idle(program, args) {
  const child = spawn(program, args, { stdio: 'ignore' })
  await sleep(20_000)
  const m = memory(tree(child.pid))
  child.kill('SIGTERM')
  await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5_000)])
  if (child.exitCode === null) child.kill('SIGKILL')
  return m
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const server = new Server({
  binary: env('WERKFUNK_SERVER_BIN'),
  databaseUrl: env('WERKFUNK_DATABASE_URL'),
  secret: env('WERKFUNK_JWT_SECRET'),
  port: await freePort(),
})
await server.start()
const tmp = mkdtempSync(join(tmpdir(), 'werkfunk-bench-'))
const profile = join(tmp, 'meister')
const driver = await startDriver()
const step = (what) => process.stderr.write(`bench desktop: ${what}\n`)
try {
  const tag = Date.now().toString(36)
  const me = await server.signUp(`bench-${tag}@werkfunk.test`, PASSWORD, 'Meister Müller', 'tradesperson')
  const partner = await server.signUp(`bench-partner-${tag}@werkfunk.test`, PASSWORD, 'Kundin Schmidt', 'customer')
  const conversations = []
  for (let i = 0; i < 50; i++) {
    conversations.push(await server.rpc(me.token, 'create_conversation', { p_type: 'project', p_title: `Auftrag ${i + 1}`, p_member_ids: [partner.id] }))
  }
  const cli = (...args) => execFileSync(CLI, ['--profile', profile, '--url', server.url, '--anon-key', server.anonKey, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
  cli('login', '--email', me.email, '--password', PASSWORD)
  // 10,000 messages: 9,020 in the first conversation (the one scrolled through), 20 in each other.
  const big = conversations[0]
  const rows = []
  for (let i = 0; i < 9020; i++) rows.push({ conversation_id: big, sender_id: i % 3 ? partner.id : me.id, content: `Nachricht ${i + 1}: Fliesen, Silikon und der Termin am Montag.` })
  for (const c of conversations.slice(1)) for (let i = 0; i < 20; i++) rows.push({ conversation_id: c, sender_id: i % 2 ? partner.id : me.id, content: `Kurze Nachricht ${i + 1}` })
  for (let i = 0; i < rows.length; i += 1000) {
    const r = await fetch(`${server.url}/rest/v1/messages`, {
      method: 'POST',
      headers: { apikey: server.serviceKey, authorization: `Bearer ${server.serviceKey}`, 'content-type': 'application/json', prefer: 'return=minimal' },
      body: JSON.stringify(rows.slice(i, i + 1000)),
    })
    if (!r.ok) throw new Error(`seeding: ${r.status} ${await r.text()}`)
  }
  cli('sync')

  step('seeded and synced')
  const starts = { app: [], blank: [] }
  for (let run = 0; run < 3; run++) {
    let t0 = Date.now()
    let s = await Session.start(driver.url, APP, ['--profile', profile, '--url', server.url, '--anon-key', server.anonKey])
    await s.waitFor('[data-testid="conversation-item"]', { timeout: 60_000 })
    starts.app.push(Date.now() - t0)
    await s.quit()
    await sleep(1000)
    t0 = Date.now()
    s = await Session.start(driver.url, BLANK, [])
    await s.until(async () => (await s.exec('return document.readyState')) === 'complete', { timeout: 60_000 })
    starts.blank.push(Date.now() - t0)
    await s.quit()
    await sleep(1000)
  }

  step(`cold starts: ${JSON.stringify(starts)}`)
  const appIdle = await idle(APP, ['--profile', profile, '--url', server.url, '--anon-key', server.anonKey])
  const blankIdle = await idle(BLANK, [])

  step(`idle memory: app ${JSON.stringify(appIdle)}, blank ${JSON.stringify(blankIdle)}`)
  // Scroll through the big conversation to its start, then back to the newest.
  const s = await Session.start(driver.url, APP, ['--profile', profile, '--url', server.url, '--anon-key', server.anonKey])
  await s.waitFor('[data-testid="conversation-item"]', { timeout: 60_000 })
  await s.cmd('POST', '/url', { url: `tauri://localhost/?c=${big}` })
  await s.waitFor('[data-testid="message"]')
  await sleep(5_000)
  const appPid = pidWith(profile)
  const before = memory(tree(appPid))
  let seen = 0
  const t0 = Date.now()
  for (let i = 0; i < 2000 && Date.now() - t0 < 600_000; i++) {
    const state = await s.exec(`const l = document.querySelector('[data-testid="message-list"]'); l.scrollTop = 0;
      const ids = [...document.querySelectorAll('[data-testid="message"]')].map(m => m.innerText.match(/Nachricht (\\d+):/)?.[1]).filter(Boolean).map(Number);
      return { min: Math.min(...ids), start: !!document.querySelector('.timeline-top') && /Anfang|Start/.test(document.querySelector('.timeline-top').innerText) }`)
    seen = state.min
    if (state.min === 1 || state.start) break
    await sleep(150)
  }
  const scrollMs = Date.now() - t0
  step(`scrolled to message ${seen} in ${scrollMs} ms`)
  const atTop = memory(tree(appPid))
  await s.exec(`const l = document.querySelector('[data-testid="message-list"]'); l.scrollTop = l.scrollHeight`)
  await sleep(20_000)
  const after = memory(tree(appPid))
  await s.quit()

  const deb = process.env.WERKFUNK_DEB ? statSync(process.env.WERKFUNK_DEB).size / 1e6 : null
  const f = (m) => `${m.pss.toFixed(0)} MB PSS / ${m.rss.toFixed(0)} MB RSS (${m.processes} processes)`
  const md = [
    '| | Werkfunk | blank Tauri v2 window | ratio | aim |',
    '|---|---:|---:|---:|---|',
    `| cold start to the cached list visible, median of 3 (through WebDriver) | ${median(starts.app)} ms | ${median(starts.blank)} ms (page shown) | ${(median(starts.app) / median(starts.blank)).toFixed(2)}× | ≤ 1 s |`,
    `| idle memory, 20 s after start | ${f(appIdle)} | ${f(blankIdle)} | ${(appIdle.pss / blankIdle.pss).toFixed(2)}× PSS | ≤ 1.25× |`,
    '',
    `Scrolling the 9,020-message conversation to its start (${(scrollMs / 1000).toFixed(1)} s; the topmost rendered message is number ${seen} — the seeded messages share timestamps, so numbers are not positions) and back:`,
    '',
    '| | memory |',
    '|---|---|',
    `| conversation open | ${f(before)} |`,
    `| at its first message | ${f(atTop)} |`,
    `| back at the newest, 20 s later | ${f(after)} |`,
    '',
    deb === null ? '' : `.deb: ${deb.toFixed(1)} MB (aim ≤ 15 MB).`,
  ].join('\n')
  writeFileSync(env('WERKFUNK_BENCH_OUT'), md + '\n')
  console.log(md)
} finally {
  await driver.stop()
  await server.stop()
  rmSync(tmp, { recursive: true, force: true })
}
process.exit(0)
