// The seed's own queries (communication-realtime-pattern.md) through @supabase/supabase-js
// 2.119.0 against werkfunk-server: starting a conversation, the useMessages list with the
// embedded sender, sending with `.select().single()`, markAsRead, unread counts, the
// notification center's list and mark-read — and what a client sees when the server refuses
// (PostgREST error codes), checked with the service key to have written nothing.
//
// Needs WERKFUNK_URL, WERKFUNK_ANON_KEY and WERKFUNK_SERVICE_KEY (`cargo xtask test` sets
// them). Realtime is not tested here. Independent of the other files here: its accounts are
// new (unique emails per run).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const URL = process.env.WERKFUNK_URL;
const ANON_KEY = process.env.WERKFUNK_ANON_KEY;
const SERVICE_KEY = process.env.WERKFUNK_SERVICE_KEY;
assert.ok(URL && ANON_KEY && SERVICE_KEY, 'WERKFUNK_URL, WERKFUNK_ANON_KEY and WERKFUNK_SERVICE_KEY must be set');

const PASSWORD = 'Sicheres-Passwort-1';
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket },
};

/** A client with its own in-memory session, as one browser tab would have. */
function client(key = ANON_KEY) {
  return createClient(URL, key, options);
}

const service = client(SERVICE_KEY);

let n = 0;
/** Signs up a new person and returns their signed-in client and user. */
async function person(fullName, role) {
  n += 1;
  const supabase = client();
  const email = `${fullName.split(' ')[0].toLowerCase()}-${Date.now()}-${process.pid}-${n}@werkstatt.test`;
  const { data, error } = await supabase.auth.signUp({ email, password: PASSWORD, options: { data: { full_name: fullName, role } } });
  assert.equal(error, null, `signUp ${fullName}`);
  // A second tab of the same person signs in with the password.
  const { error: signInError } = await supabase.auth.signInWithPassword({ email, password: PASSWORD });
  assert.equal(signInError, null, `signIn ${fullName}`);
  return { supabase, user: data.user };
}

/** The seed's useMessages query, whitespace as in the seed. */
async function useMessages(supabase, conversationId) {
  const { data, error } = await supabase
    .from('messages')
    .select(`
          *,
          sender:sender_id (full_name, avatar_url)
        `)
    .eq('conversation_id', conversationId)
    .is('deleted_at', null)
    .order('created_at', { ascending: true });
  if (error) throw error;
  return data;
}

/** The seed's sendMessage mutation. */
async function sendMessage(supabase, user, conversationId, content, type = 'text') {
  return supabase
    .from('messages')
    .insert({
      conversation_id: conversationId,
      sender_id: user.id,
      content,
      type,
    })
    .select()
    .single();
}

/** The seed's markAsRead. */
async function markAsRead(supabase, user, conversationId) {
  return supabase
    .from('conversation_members')
    .update({ last_read_at: new Date().toISOString() })
    .eq('conversation_id', conversationId)
    .eq('user_id', user.id);
}

/** The notification center's list. */
async function notifications(supabase) {
  const { data, error } = await supabase
    .from('notifications')
    .select('*')
    .order('created_at', { ascending: false })
    .limit(20);
  if (error) throw error;
  return data;
}

/** How many messages exist with `column` = `value`, seen past RLS. */
async function messagesWhere(column, value) {
  const { count, error } = await service.from('messages').select('*', { count: 'exact', head: true }).eq(column, value);
  assert.equal(error, null);
  return count;
}

let meister, kundin, fremd, conversationId;

before(async () => {
  meister = await person('Meister Müller', 'tradesperson');
  kundin = await person('Kundin Schmidt', 'customer');
  fremd = await person('Fremder Fritz', 'customer');
  const { data, error } = await meister.supabase.rpc('create_conversation', {
    p_type: 'project',
    p_title: 'Bad sanieren',
    p_member_ids: [kundin.user.id],
  });
  assert.equal(error, null);
  assert.match(data, /^[0-9a-f-]{36}$/);
  conversationId = data;
});

after(async () => {
  for (const p of [meister, kundin, fremd]) {
    await p?.supabase.auth.signOut();
  }
});

test('send, then list with the embedded sender', async () => {
  const sent = await sendMessage(kundin.supabase, kundin.user, conversationId, 'Wann kommen Sie?');
  assert.equal(sent.error, null);
  assert.equal(sent.status, 201);
  assert.equal(sent.data.content, 'Wann kommen Sie?');
  assert.equal(sent.data.sender_id, kundin.user.id);
  assert.equal(sent.data.type, 'text');
  assert.equal(sent.data.deleted_at, null);
  const reply = await sendMessage(meister.supabase, meister.user, conversationId, 'Montag um 8.');
  assert.equal(reply.error, null);

  const list = await useMessages(meister.supabase, conversationId);
  assert.deepEqual(list.map((m) => m.content), ['Wann kommen Sie?', 'Montag um 8.']);
  assert.deepEqual(list[0].sender, { full_name: 'Kundin Schmidt', avatar_url: null });
  assert.deepEqual(list[1].sender, { full_name: 'Meister Müller', avatar_url: null });
  assert.equal(list[0].id, sent.data.id);

  // The outsider's list is empty, not an error.
  assert.deepEqual(await useMessages(fremd.supabase, conversationId), []);
});

test('unread counts and markAsRead', async () => {
  const conv = (await kundin.supabase.rpc('create_conversation', { p_type: 'group', p_title: 'Angebot', p_member_ids: [meister.user.id] })).data;
  for (const text of ['Angebot kommt', 'Angebot ist da']) {
    const { error } = await sendMessage(meister.supabase, meister.user, conv, text);
    assert.equal(error, null);
  }
  const mine = await kundin.supabase.rpc('get_unread_message_count', { p_conversation_id: conv, p_user_id: kundin.user.id });
  assert.equal(mine.error, null);
  assert.equal(mine.data, 2);

  // Only one's own count: asking for someone else's is 42501.
  const theirs = await kundin.supabase.rpc('get_unread_message_count', { p_conversation_id: conv, p_user_id: meister.user.id });
  assert.equal(theirs.error?.code, '42501');
  assert.equal(theirs.status, 403);

  const all = await kundin.supabase.rpc('get_unread_counts');
  assert.equal(all.error, null);
  const byConversation = Object.fromEntries(all.data.map((r) => [r.conversation_id, r.unread_count]));
  assert.equal(byConversation[conv], 2);
  assert.ok(conversationId in byConversation);

  const { error, status } = await markAsRead(kundin.supabase, kundin.user, conv);
  assert.equal(error, null);
  assert.equal(status, 204);
  const after = await kundin.supabase.rpc('get_unread_message_count', { p_conversation_id: conv, p_user_id: kundin.user.id });
  assert.equal(after.data, 0);
  const allAfter = await kundin.supabase.rpc('get_unread_counts');
  assert.equal(allAfter.data.find((r) => r.conversation_id === conv).unread_count, 0);
});

test('notification center: list and mark read', async () => {
  const conv = (await meister.supabase.rpc('create_conversation', { p_type: 'direct', p_title: null, p_member_ids: [fremd.user.id] })).data;
  const text = 'Ihr Termin steht: Dienstag, 9 Uhr. '.repeat(4);
  const { error: sendError } = await sendMessage(meister.supabase, meister.user, conv, text);
  assert.equal(sendError, null);

  const list = await notifications(fremd.supabase);
  assert.equal(list.length, 1);
  const [note] = list;
  assert.equal(note.title, 'Neue Nachricht');
  assert.equal(note.body, text.slice(0, 100));
  assert.equal(note.link, `/conversations/${conv}`);
  assert.equal(note.read, false);
  assert.equal(note.user_id, fremd.user.id);
  const unread = list.filter((x) => !x.read).length;
  assert.equal(unread, 1);

  const { count } = await fremd.supabase.from('notifications').select('*', { count: 'exact', head: true }).eq('read', false);
  assert.equal(count, 1);

  // Nobody else can mark it (RLS: zero rows), its owner can.
  const other = await meister.supabase.from('notifications').update({ read: true }).eq('id', note.id);
  assert.equal(other.error, null);
  assert.equal((await notifications(fremd.supabase))[0].read, false);
  const { error } = await fremd.supabase.from('notifications').update({ read: true }).eq('id', note.id);
  assert.equal(error, null);
  assert.equal((await notifications(fremd.supabase))[0].read, true);

  // Only `read` may change.
  const edit = await fremd.supabase.from('notifications').update({ title: 'Gefälscht' }).eq('id', note.id);
  assert.equal(edit.error?.code, '42501');
});

test('refusals carry PostgREST codes and write nothing', async () => {
  const before = await messagesWhere('conversation_id', conversationId);

  const empty = await sendMessage(kundin.supabase, kundin.user, conversationId, '');
  assert.equal(empty.error?.code, '23514');
  assert.equal(empty.status, 400);
  assert.equal(empty.data, null);
  const long = await sendMessage(kundin.supabase, kundin.user, conversationId, 'x'.repeat(10_001));
  assert.equal(long.error?.code, '23514');

  const outsider = await sendMessage(fremd.supabase, fremd.user, conversationId, 'Darf ich mitlesen?');
  assert.equal(outsider.error?.code, '42501');
  assert.equal(outsider.status, 403);
  const impostor = await sendMessage(kundin.supabase, meister.user, conversationId, 'Im Namen des Meisters');
  assert.equal(impostor.error?.code, '42501');
  const anonymous = await sendMessage(client(), meister.user, conversationId, 'Anonym');
  assert.equal(anonymous.error?.code, '42501');
  assert.equal(anonymous.status, 401);

  const unknownColumn = await kundin.supabase.from('messages').insert({ conversation_id: conversationId, content: 'x', farbe: 'rot' });
  assert.equal(unknownColumn.error?.code, 'PGRST204');
  const unknownTable = await kundin.supabase.from('nachrichten').select('*');
  assert.equal(unknownTable.error?.code, 'PGRST205');
  const unknownFunction = await kundin.supabase.rpc('gibt_es_nicht');
  assert.equal(unknownFunction.error?.code, 'PGRST202');
  const none = await kundin.supabase.from('messages').select('*').eq('id', randomUUID()).single();
  assert.equal(none.error?.code, 'PGRST116');
  assert.equal(none.status, 406);
  const maybe = await kundin.supabase.from('messages').select('*').eq('id', randomUUID()).maybeSingle();
  assert.equal(maybe.error, null);
  assert.equal(maybe.data, null);

  assert.equal(await messagesWhere('conversation_id', conversationId), before);
});

test('the outbox resends by client id: the duplicate is a no-op', async () => {
  const id = randomUUID();
  const message = { id, conversation_id: conversationId, sender_id: kundin.user.id, content: 'Nur einmal', type: 'text' };
  const first = await kundin.supabase.from('messages').insert(message).select();
  assert.equal(first.error, null);
  assert.equal(first.data.length, 1);

  const again = await kundin.supabase.from('messages').upsert(message, { onConflict: 'id', ignoreDuplicates: true }).select();
  assert.equal(again.error, null);
  assert.deepEqual(again.data, []);
  assert.equal(await messagesWhere('id', id), 1);

  // Without ignoreDuplicates a plain insert of the same id is a conflict.
  const duplicate = await kundin.supabase.from('messages').insert(message);
  assert.equal(duplicate.error?.code, '23505');
  assert.equal(duplicate.status, 409);

  // Reading it back by id settles what happened to it.
  const { data } = await kundin.supabase.from('messages').select('id, content').eq('id', id).single();
  assert.deepEqual(data, { id, content: 'Nur einmal' });
});

test('edit and soft delete of an own message', async () => {
  const { data: sent } = await sendMessage(kundin.supabase, kundin.user, conversationId, 'Tippfehlr');
  const edited = await kundin.supabase.from('messages').update({ content: 'Tippfehler' }).eq('id', sent.id).select().single();
  assert.equal(edited.error, null);
  assert.equal(edited.data.content, 'Tippfehler');
  assert.notEqual(edited.data.updated_at, sent.updated_at);

  // Someone else's message: nothing matches under RLS.
  const foreign = await meister.supabase.from('messages').update({ content: 'Übernommen' }).eq('id', sent.id).select();
  assert.equal(foreign.error, null);
  assert.deepEqual(foreign.data, []);

  const deleted = await kundin.supabase.from('messages').update({ deleted_at: new Date().toISOString() }).eq('id', sent.id);
  assert.equal(deleted.error, null);
  const list = await useMessages(meister.supabase, conversationId);
  assert.ok(!list.some((m) => m.id === sent.id), 'a soft-deleted message leaves the list');
});

test('people search and direct conversations', async () => {
  const found = await fremd.supabase.rpc('search_profiles', { p_query: 'müller' });
  assert.equal(found.error, null);
  assert.ok(found.data.some((p) => p.id === meister.user.id && p.full_name === 'Meister Müller'));
  const viaGet = await fremd.supabase.rpc('search_profiles', { p_query: 'Schmidt' }, { get: true });
  assert.equal(viaGet.error, null);
  assert.ok(viaGet.data.some((p) => p.id === kundin.user.id));

  const args = (other) => ({ p_type: 'direct', p_title: null, p_member_ids: [other.user.id] });
  const a = await kundin.supabase.rpc('create_conversation', args(fremd));
  const b = await fremd.supabase.rpc('create_conversation', args(kundin));
  assert.equal(a.error, null);
  assert.equal(b.data, a.data, 'the same pair gets the same direct conversation');

  const { data: members } = await fremd.supabase
    .from('conversation_members')
    .select('user_id, role, profile:profiles(full_name)')
    .eq('conversation_id', a.data)
    .order('role', { ascending: false });
  assert.deepEqual(members, [
    { user_id: kundin.user.id, role: 'owner', profile: { full_name: 'Kundin Schmidt' } },
    { user_id: fremd.user.id, role: 'member', profile: { full_name: 'Fremder Fritz' } },
  ]);

  // Conversations the user is in, newest activity first, with a count of their messages.
  const { data: conversations, count } = await kundin.supabase
    .from('conversations')
    .select('id, type, title, messages(id)', { count: 'exact' })
    .order('updated_at', { ascending: false })
    .range(0, 9);
  assert.ok(count >= 3);
  assert.equal(conversations.length, count);
  assert.ok(conversations.every((c) => Array.isArray(c.messages)));
});
