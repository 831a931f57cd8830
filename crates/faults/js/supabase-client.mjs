// A supabase-js client in the convergence run (crates/faults/src/convergence.rs): through the
// fault proxy, it signs in with a password and sends numbered messages (`<name>-<seq>`) one at
// a time, each with an id of its own, retried with the same id until the server confirms it
// (an upsert that ignores duplicates: a retry of a request that did arrive writes nothing).
// A refused or lost request is retried; a refusal of the token signs in again. Every
// confirmed send is printed as one JSON line; the script ends by itself after
// WERKFUNK_JS_SECS seconds (the send in hand is finished first, for at most 60 s more).
//
// Environment: WERKFUNK_URL, WERKFUNK_ANON_KEY, WERKFUNK_JS_EMAIL, WERKFUNK_JS_PASSWORD,
// WERKFUNK_JS_USER_ID, WERKFUNK_JS_CONVERSATIONS (comma-separated), WERKFUNK_JS_NAME,
// WERKFUNK_JS_SECS, WERKFUNK_SUPABASE_JS_DIR (a folder whose node_modules has
// @supabase/supabase-js: tests/supabase-js).

import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
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
const conversations = env('WERKFUNK_JS_CONVERSATIONS').split(',');
const deadline = Date.now() + Number(env('WERKFUNK_JS_SECS')) * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const supabase = createClient(env('WERKFUNK_URL'), env('WERKFUNK_ANON_KEY'), {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
  global: { fetch: (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(15000) }) },
});

let signIns = 0;
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

await signIn();
let seq = 0;
let retries = 0;
while (Date.now() < deadline) {
  seq += 1;
  const id = randomUUID();
  const conversation = conversations[seq % conversations.length];
  const content = `${name}-${String(seq).padStart(5, '0')} supabase-js über die Baustelle`;
  for (;;) {
    let error;
    try {
      ({ error } = await supabase
        .from('messages')
        .upsert({ id, conversation_id: conversation, sender_id: userId, content }, { onConflict: 'id', ignoreDuplicates: true }));
    } catch (e) {
      error = { message: String(e) };
    }
    if (!error) {
      console.log(JSON.stringify({ sent: { seq, id, conversation, content } }));
      break;
    }
    retries += 1;
    if (Date.now() > deadline + 60000) break;
    if (/jwt|token|401|PGRST30/i.test(`${error.code} ${error.message}`)) await signIn();
    else await sleep(200);
  }
  await sleep(100 + Math.random() * 400);
}
console.log(JSON.stringify({ done: { seq, retries, signIns } }));
process.exit(0);
