// Realtime through @supabase/supabase-js 2.119.0 against werkfunk-server, with both
// serializers (vsn 2.0.0, the client's default, and 1.0.0): postgres_changes under RLS,
// broadcast, presence, and access tokens refreshed or expiring on a joined channel.
//
// Needs WERKFUNK_URL, WERKFUNK_ANON_KEY, WERKFUNK_SERVICE_KEY and WERKFUNK_JWT_SECRET (the
// server's test secret, to mint short-lived tokens); `cargo xtask test` sets them.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const URL = process.env.WERKFUNK_URL;
const ANON_KEY = process.env.WERKFUNK_ANON_KEY;
const SERVICE_KEY = process.env.WERKFUNK_SERVICE_KEY;
const SECRET = process.env.WERKFUNK_JWT_SECRET;
assert.ok(URL && ANON_KEY && SERVICE_KEY && SECRET, 'WERKFUNK_URL, _ANON_KEY, _SERVICE_KEY and _JWT_SECRET must be set');

const PASSWORD = 'Sicheres-Passwort-1';
const clients = [];

function client(vsn, key = ANON_KEY) {
  const realtime = { transport: WebSocket, ...(vsn ? { vsn } : {}) };
  const c = createClient(URL, key, { auth: { persistSession: false, autoRefreshToken: false }, realtime });
  clients.push(c);
  return c;
}

after(async () => {
  for (const c of clients) await c.removeAllChannels();
});

let n = 0;
async function person(name, role, vsn) {
  n += 1;
  const supabase = client(vsn);
  const email = `${name.toLowerCase()}-rt-${Date.now()}-${process.pid}-${n}@werkstatt.test`;
  const { data, error } = await supabase.auth.signUp({ email, password: PASSWORD, options: { data: { full_name: name, role } } });
  assert.ifError(error);
  return { supabase, id: data.user.id, session: data.session };
}

async function conversation(owner, others, type = 'group') {
  const { data, error } = await owner.supabase.rpc('create_conversation', {
    p_type: type, p_title: 'Baustelle', p_member_ids: others.map((o) => o.id),
  });
  assert.ifError(error);
  return data;
}

/** Subscribes and resolves once SUBSCRIBED; rejects on an error status. */
function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel);
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(new Error(`${status}: ${err?.message ?? ''}`));
    });
  });
}

/** Resolves when `pred()` holds, or rejects after `ms`. */
async function until(pred, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function jwt(claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

for (const vsn of ['2.0.0', '1.0.0']) {
  test(`postgres_changes INSERT/UPDATE/DELETE with filters reach members, never outsiders (vsn ${vsn})`, async () => {
    const alice = await person('Alice', 'tradesperson', vsn);
    const bob = await person('Bob', 'customer', vsn);
    const eve = await person('Eve', 'customer', vsn);
    const conv = await conversation(alice, [bob]);
    const filter = `conversation_id=eq.${conv}`;
    const seen = { bob: [], eve: [] };
    const listen = (who, name) => who.supabase.channel(name)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'messages', filter }, (p) => seen[who === bob ? 'bob' : 'eve'].push(p))
      .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'messages', filter }, (p) => seen[who === bob ? 'bob' : 'eve'].push(p))
      .on('postgres_changes', { event: 'DELETE', schema: 'public', table: 'messages', filter }, (p) => seen[who === bob ? 'bob' : 'eve'].push(p));
    await subscribed(listen(bob, `messages:${conv}`));
    await subscribed(listen(eve, `snoop-${conv}`));

    const { data: sent, error } = await alice.supabase.from('messages')
      .insert({ conversation_id: conv, sender_id: alice.id, content: 'Ich komme um 8.', type: 'text' }).select().single();
    assert.ifError(error);
    await until(() => seen.bob.length === 1, 10000, 'INSERT');
    assert.equal(seen.bob[0].eventType, 'INSERT');
    assert.equal(seen.bob[0].new.content, 'Ich komme um 8.');
    assert.equal(seen.bob[0].new.id, sent.id);

    const { error: e2 } = await alice.supabase.from('messages').update({ content: 'Ich komme um 9.' }).eq('id', sent.id);
    assert.ifError(e2);
    await until(() => seen.bob.length === 2, 10000, 'UPDATE');
    assert.equal(seen.bob[1].eventType, 'UPDATE');
    assert.equal(seen.bob[1].new.content, 'Ich komme um 9.');

    const service = client(vsn, SERVICE_KEY);
    const { error: e3 } = await service.from('messages').delete().eq('id', sent.id);
    assert.ifError(e3);
    await until(() => seen.bob.length === 3, 10000, 'DELETE');
    assert.equal(seen.bob[2].eventType, 'DELETE');
    assert.equal(seen.bob[2].old.id, sent.id);
    assert.equal(seen.bob[2].old.conversation_id, conv);

    await sleep(500);
    assert.equal(seen.eve.length, 0, 'an outsider with the same filter receives nothing');
  });

  test(`broadcast between members, no echo without self (vsn ${vsn})`, async () => {
    const alice = await person('Alice', 'tradesperson', vsn);
    const bob = await person('Bob', 'customer', vsn);
    const conv = await conversation(alice, [bob], 'direct');
    const heard = { alice: [], bob: [] };
    const a = alice.supabase.channel(`typing:${conv}`).on('broadcast', { event: 'typing' }, ({ payload }) => heard.alice.push(payload));
    const b = bob.supabase.channel(`typing:${conv}`, { config: { broadcast: { self: true } } })
      .on('broadcast', { event: 'typing' }, ({ payload }) => heard.bob.push(payload));
    await subscribed(a);
    await subscribed(b);
    assert.equal(await a.send({ type: 'broadcast', event: 'typing', payload: { userId: alice.id, fullName: 'Alice' } }), 'ok');
    await until(() => heard.bob.length === 1, 10000, 'bob hears alice');
    assert.deepEqual(heard.bob[0], { userId: alice.id, fullName: 'Alice' });
    await b.send({ type: 'broadcast', event: 'typing', payload: { userId: bob.id } });
    await until(() => heard.alice.length === 1 && heard.bob.length === 2, 10000, 'self echo for bob only');
    await sleep(300);
    assert.equal(heard.alice.length, 1, 'alice (self: false) never hears herself');

    // An outsider cannot join a conversation's typing topic.
    const eve = await person('Eve', 'customer', vsn);
    await assert.rejects(subscribed(eve.supabase.channel(`typing:${conv}`)), /CHANNEL_ERROR/);
  });

  test(`presence sync, join and leave (vsn ${vsn})`, async () => {
    const alice = await person('Alice', 'tradesperson', vsn);
    const bob = await person('Bob', 'customer', vsn);
    const conv = await conversation(alice, [bob], 'direct');
    const online = new Set();
    const joins = [];
    const leaves = [];
    const a = alice.supabase.channel(`presence:${conv}`, { config: { presence: { key: alice.id } } });
    a.on('presence', { event: 'sync' }, () => {
      online.clear();
      for (const k of Object.keys(a.presenceState())) online.add(k);
    })
      .on('presence', { event: 'join' }, ({ key }) => joins.push(key))
      .on('presence', { event: 'leave' }, ({ key }) => leaves.push(key));
    await subscribed(a);
    await a.track({ user_id: alice.id, full_name: 'Alice', online_at: new Date().toISOString() });
    await until(() => online.has(alice.id), 10000, 'alice sees herself');

    const b = bob.supabase.channel(`presence:${conv}`, { config: { presence: { key: bob.id } } });
    await subscribed(b);
    await b.track({ user_id: bob.id, full_name: 'Bob' });
    await until(() => online.has(bob.id) && joins.includes(bob.id), 10000, 'bob joins');
    await bob.supabase.removeChannel(b);
    await until(() => !online.has(bob.id) && leaves.includes(bob.id), 10000, 'bob leaves');
  });

  test(`a token refreshed through access_token keeps the channel; an expired one closes it (vsn ${vsn})`, async () => {
    const alice = await person('Alice', 'tradesperson', vsn);
    const bob = await person('Bob', 'customer', vsn);
    const conv = await conversation(alice, [bob], 'direct');
    const claims = (secs) => ({
      sub: bob.id, role: 'authenticated', aud: 'authenticated',
      exp: Math.floor(Date.now() / 1000) + secs, iat: Math.floor(Date.now() / 1000),
    });
    // Bob's realtime client holds a token that lives 3 seconds.
    const watcher = client(vsn);
    await watcher.realtime.setAuth(jwt(claims(3)));
    const got = [];
    const statuses = [];
    const ch = watcher.channel(`messages:${conv}`)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'messages', filter: `conversation_id=eq.${conv}` }, (p) => got.push(p))
      .on('system', {}, (p) => statuses.push(p));
    await subscribed(ch);
    // Before it expires, a fresh token goes out on the channel (what supabase-js does on refresh).
    await watcher.realtime.setAuth(jwt(claims(60)));
    await sleep(4500);
    assert.equal(ch.state, 'joined', 'the refreshed channel stays joined');
    const { error } = await alice.supabase.from('messages').insert({ conversation_id: conv, sender_id: alice.id, content: 'noch da' });
    assert.ifError(error);
    await until(() => got.length === 1, 10000, 'delivery after the first token expired');

    // Another client whose token simply expires: the server closes its channel.
    const lapsing = client(vsn);
    await lapsing.realtime.setAuth(jwt(claims(2)));
    const closed = [];
    const ch2 = lapsing.channel(`messages:${conv}`).on('system', {}, (p) => closed.push(p));
    await subscribed(ch2);
    await until(() => closed.some((p) => p.status === 'error' && /Token has expired/.test(p.message)), 10000, 'expiry message');
    await until(() => ch2.state === 'closed', 10000, 'channel closed');
  });
}
