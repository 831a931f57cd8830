// A supabase-js client in the convergence run (crates/faults/src/convergence.rs), written as
// a supabase-js app would be, through the fault proxy:
//
// - Work, until WERKFUNK_JS_SECS have passed, one request at a time: send numbered messages
//   (`<name>-<seq>`, 60 %), each with an id of its own and retried with that id until the
//   server confirms it (an upsert that ignores duplicates: a retry of a request that did
//   arrive writes nothing); edit (20 %) and soft-delete (8 %) its own messages, and mark the
//   conversation read (12 %), each retried until confirmed. A request whose token is refused,
//   or made without a session, signs in again first.
// - A mirror of the conversation, kept as a supabase-js app keeps its list: a channel on
//   `messages:<id>` with a `postgres_changes` binding applies every INSERT and UPDATE, and
//   every SUBSCRIBED (the first join and each rejoin after a cut) refetches the conversation
//   over REST and merges it in (a row replaces the mirror's only if it is as new, by
//   `updated_at`), so what was missed while the socket was down is caught up. A channel the
//   server closes (an expired token) is opened again.
// - Then it waits for `finish` on stdin (the other clients have synced), marks the
//   conversation read and asks for its unread count, sends one last message and waits until
//   that message is in the mirror and no refetch is under way (changes arrive in commit
//   order, so every change since the last join has arrived, and that join's refetch has
//   the rest), and prints the mirror.
//
// Output: one JSON line per confirmed send (`sent`), edit or delete (`change`), read (`read`),
// then `unread`, `mirror` and `done`; `failure` lines for what the harness must count as failed.
//
// Environment: WERKFUNK_URL, WERKFUNK_ANON_KEY, WERKFUNK_JS_EMAIL, WERKFUNK_JS_PASSWORD,
// WERKFUNK_JS_USER_ID, WERKFUNK_JS_CONVERSATION, WERKFUNK_JS_NAME, WERKFUNK_JS_SECS,
// WERKFUNK_JS_SEED, WERKFUNK_SUPABASE_JS_DIR (a folder whose node_modules has
// @supabase/supabase-js: tests/supabase-js).

import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const require = createRequire(join(env('WERKFUNK_SUPABASE_JS_DIR'), 'package.json'));
const { createClient } = require('@supabase/supabase-js');
const WebSocket = require('ws');

const name = env('WERKFUNK_JS_NAME');
const userId = env('WERKFUNK_JS_USER_ID');
const conversation = env('WERKFUNK_JS_CONVERSATION');
const deadline = Date.now() + Number(env('WERKFUNK_JS_SECS')) * 1000;
const giveUp = () => Date.now() > deadline + 120000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Written in order; the promise settles once the line is handed to the pipe (the last lines
// must be out before the process exits).
const print = (line) => new Promise((resolve) => process.stdout.write(`${JSON.stringify(line)}\n`, resolve));

// A seeded generator (mulberry32), so that a run's mix of operations follows its seed.
let rngState = Number(BigInt(env('WERKFUNK_JS_SEED')) % 4294967296n) >>> 0;
const random = () => {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// A trace on stderr, which the harness prints when the run broke a promise.
const started = Date.now();
const trace = (what) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(2)}] ${what}\n`);

const supabase = createClient(env('WERKFUNK_URL'), env('WERKFUNK_ANON_KEY'), {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
  global: { fetch: (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(15000) }) },
});

let signIns = 0;
let retries = 0;
// The errors requests were answered with, by code (or message), for the report.
const errors = {};
async function signIn() {
  for (;;) {
    try {
      const { error } = await supabase.auth.signInWithPassword({ email: env('WERKFUNK_JS_EMAIL'), password: env('WERKFUNK_JS_PASSWORD') });
      signIns += 1;
      if (!error) return;
    } catch {
      // a cut connection: try again
    }
    await sleep(300);
  }
}

async function ensureSession() {
  let session = null;
  try {
    ({ data: { session } } = await supabase.auth.getSession());
  } catch {
    // a refresh cut by the proxy: sign in below
  }
  if (!session) await signIn();
}

// Runs `request` (a PostgREST call through supabase-js) until it answers without an error,
// signing in again when the token is refused. `null` when it gave up.
async function untilConfirmed(request) {
  for (;;) {
    await ensureSession();
    let result;
    try {
      result = await request();
    } catch (e) {
      result = { error: { message: String(e) } };
    }
    if (!result.error) return result;
    retries += 1;
    const kind = String(result.error.code || result.error.message || 'unknown').slice(0, 60);
    errors[kind] = (errors[kind] ?? 0) + 1;
    if (giveUp()) return null;
    if (/jwt|token|401|PGRST30|42501/i.test(`${result.error.code} ${result.error.message}`)) await signIn();
    else await sleep(200);
  }
}

// ---- the mirror ----

// Microseconds since the epoch of a Postgres timestamp, as PostgREST or the change feed writes
// it (`2026-12-02T13:20:01.123456+00:00`, `…+00`, `…Z`).
function micros(ts) {
  const m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d(?::?\d\d)?)$/.exec(ts);
  if (!m) throw new Error(`not a timestamp: ${ts}`);
  let zone = m[4] === 'Z' ? 'Z' : m[4].replace(/^([+-]\d\d)(\d\d)$/, '$1:$2');
  if (/^[+-]\d\d$/.test(zone)) zone += ':00';
  const frac = (m[3] ?? '').padEnd(6, '0').slice(0, 6);
  return BigInt(Date.parse(`${m[1]}T${m[2]}${zone}`)) * 1000n + BigInt(frac);
}

const mirror = new Map();
function merge(row) {
  const next = { content: row.deleted_at ? '' : row.content, deleted: row.deleted_at != null, updated: micros(row.updated_at) };
  const cur = mirror.get(row.id);
  if (!cur || next.updated >= cur.updated) mirror.set(row.id, next);
}

let refetches = 0;
// Refetches under way: the mirror is complete only once the last one has been merged.
let refetching = 0;
async function refetch() {
  refetches += 1;
  refetching += 1;
  try {
    await refetchPages();
  } finally {
    refetching -= 1;
  }
}

async function refetchPages() {
  const page = 1000;
  for (let from = 0; ; from += page) {
    const result = await untilConfirmed(() =>
      supabase
        .from('messages')
        .select('id,content,deleted_at,updated_at')
        .eq('conversation_id', conversation)
        .order('created_at')
        .order('id')
        .range(from, from + page - 1),
    );
    if (!result) return;
    trace(`refetch ${refetches}: ${result.data.length} rows from ${from}, ${refetching} under way`);
    result.data.forEach(merge);
    if (result.data.length < page) return;
  }
}

let channel = null;
let joins = 0;
function subscribe() {
  const mine = supabase
    .channel(`messages:${conversation}`)
    .on('postgres_changes', { event: '*', schema: 'public', table: 'messages', filter: `conversation_id=eq.${conversation}` }, (change) => {
      trace(`${change.eventType} ${change.new?.id} ${change.new?.updated_at}`);
      if (change.new && change.new.id) merge(change.new);
    });
  channel = mine;
  mine.subscribe((status, err) => {
    trace(`channel ${status}${err ? ` ${err.message ?? err}` : ''}`);
    if (status === 'SUBSCRIBED') {
      joins += 1;
      refetch();
    } else if (status === 'CLOSED' && channel === mine) {
      // Closed by the server (its token expired): open it again, as an app would.
      channel = null;
      supabase.removeChannel(mine).finally(() => setTimeout(subscribe, 200));
    }
  });
}

// ---- the work ----

supabase.auth.onAuthStateChange((event) => trace(`auth ${event}`));
await signIn();
// A token lives 20 s in this run: keep the session (and with it the socket's token) fresh
// between requests too; supabase-js refreshes in getSession when the token is near its end.
const keepFresh = setInterval(() => supabase.auth.getSession().catch(() => {}), 5000);
subscribe();

let seq = 0;
let edits = 0;
const live = []; // ids of own messages, confirmed and not deleted

async function send() {
  seq += 1;
  const id = randomUUID();
  const content = `${name}-${String(seq).padStart(5, '0')} supabase-js über die Baustelle`;
  const result = await untilConfirmed(() =>
    supabase.from('messages').upsert({ id, conversation_id: conversation, sender_id: userId, content }, { onConflict: 'id', ignoreDuplicates: true }),
  );
  if (!result) return null;
  print({ sent: { seq, id, conversation, content } });
  live.push({ id, prefix: content.split(' ')[0] });
  return id;
}

async function change(pick, values, kind) {
  const result = await untilConfirmed(() => supabase.from('messages').update(values).eq('id', pick.id).select('id'));
  const confirmed = result != null && result.data.length === 1;
  if (result != null && result.data.length !== 1) print({ failure: `${name}: ${kind} of ${pick.id} matched ${result.data.length} rows` });
  print({ change: { id: pick.id, content: kind === 'delete' ? null : values.content, confirmed } });
}

async function markRead() {
  const result = await untilConfirmed(() =>
    supabase.from('conversation_members').update({ last_read_at: new Date().toISOString() }).eq('conversation_id', conversation).eq('user_id', userId),
  );
  if (result) print({ read: conversation });
}

while (Date.now() < deadline) {
  const roll = Math.floor(random() * 100);
  const at = live.length ? Math.floor(random() * live.length) : -1;
  if (roll >= 60 && roll < 80 && at >= 0) {
    edits += 1;
    await change(live[at], { content: `${live[at].prefix} edit ${edits}` }, 'edit');
  } else if (roll >= 80 && roll < 88 && at >= 0) {
    const [pick] = live.splice(at, 1);
    await change(pick, { deleted_at: new Date().toISOString() }, 'delete');
  } else if (roll >= 88) {
    await markRead();
  } else {
    await send();
  }
  await sleep(100 + random() * 400);
}

// ---- the end ----

const finish = createInterface({ input: process.stdin });
await new Promise((resolve) => {
  finish.on('line', (l) => l.trim() === 'finish' && resolve());
  finish.on('close', resolve);
});
finish.close();

trace('finish');
await markRead();
const unread = await untilConfirmed(() => supabase.rpc('get_unread_message_count', { p_conversation_id: conversation, p_user_id: userId }));
print({ unread: unread ? unread.data : null });

const last = await send();
trace(`last message ${last}`);
// The last message arrives live once the channel is joined, possibly before the refetch of
// that join (what was missed while the socket was down) is merged: wait for both.
const waitUntil = Date.now() + 90000;
const complete = () => last && mirror.has(last) && refetching === 0;
while (!complete() && Date.now() < waitUntil) await sleep(100);
if (!complete()) print({ failure: `${name}: its last message ${last} did not reach its mirror, or a refetch did not end, within 90 s` });
print({ mirror: [...mirror].map(([id, m]) => ({ id, content: m.content, deleted: m.deleted })) });
clearInterval(keepFresh);
await print({ done: { seq, retries, signIns, refetches, joins, errors } });
process.exit(0);
