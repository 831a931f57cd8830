// The real werkfunk-server as a child of the test, so the test can stop it (the network is
// gone) and start it again on the same port (the network is back).

import { spawn, execFileSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'

export class Server {
  constructor({ binary, databaseUrl, secret, port }) {
    Object.assign(this, { binary, databaseUrl, secret, port })
    this.url = `http://127.0.0.1:${port}`
    const keys = execFileSync(binary, ['keys'], { env: { ...process.env, WERKFUNK_JWT_SECRET: secret } }).toString()
    this.anonKey = keys.match(/^anon_key=(.*)$/m)[1]
    this.serviceKey = keys.match(/^service_role_key=(.*)$/m)[1]
  }

  async start() {
    this.child = spawn(this.binary, [], {
      env: {
        ...process.env,
        DATABASE_URL: this.databaseUrl,
        WERKFUNK_JWT_SECRET: this.secret,
        WERKFUNK_LISTEN: `127.0.0.1:${this.port}`,
        RUST_LOG: process.env.RUST_LOG ?? 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    for (let i = 0; i < 300; i++) {
      try {
        if ((await fetch(`${this.url}/health`)).ok) return
      } catch {}
      await sleep(100)
    }
    throw new Error('the server did not become healthy')
  }

  /** SIGTERM: the server closes its websockets and exits 0. */
  async stop() {
    const child = this.child
    if (!child || child.exitCode !== null) return
    child.kill('SIGTERM')
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(15_000)])
    if (child.exitCode === null) child.kill('SIGKILL')
  }

  async signUp(email, password, name, role) {
    const r = await fetch(`${this.url}/auth/v1/signup`, {
      method: 'POST',
      headers: { apikey: this.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({ email, password, data: { full_name: name, role } }),
    })
    const body = await r.json()
    if (!r.ok) throw new Error(`signup ${email}: ${JSON.stringify(body)}`)
    return { id: body.user.id, token: body.access_token, email, password, name }
  }

  async rpc(token, fn, args) {
    const r = await fetch(`${this.url}/rest/v1/rpc/${fn}`, {
      method: 'POST',
      headers: { apikey: this.anonKey, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(args),
    })
    const body = await r.json()
    if (!r.ok) throw new Error(`rpc ${fn}: ${JSON.stringify(body)}`)
    return body
  }

  async messages(token, conversationId) {
    const q = new URLSearchParams({ conversation_id: `eq.${conversationId}`, order: 'created_at.asc,id.asc', select: 'id,content,sender_id' })
    const r = await fetch(`${this.url}/rest/v1/messages?${q}`, { headers: { apikey: this.anonKey, authorization: `Bearer ${token}` } })
    return r.json()
  }
}
