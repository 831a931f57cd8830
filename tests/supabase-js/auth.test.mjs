// Auth through @supabase/supabase-js 2.119.0 against werkfunk-server: the calls the seed's
// app makes (signUp with metadata, signInWithPassword, getUser, refreshSession, signOut) and
// the error codes it branches on (weak_password, user_already_exists, invalid_credentials).
//
// Needs WERKFUNK_URL and WERKFUNK_ANON_KEY (`cargo xtask test` sets them). Independent of the
// other files here: every account is new (unique emails per run).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const URL = process.env.WERKFUNK_URL;
const ANON_KEY = process.env.WERKFUNK_ANON_KEY;
assert.ok(URL && ANON_KEY, 'WERKFUNK_URL and WERKFUNK_ANON_KEY must be set');

const PASSWORD = 'Sicheres-Passwort-1';

/** A client with its own in-memory session, as one browser tab would have. */
function client() {
  return createClient(URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket },
  });
}

let n = 0;
function email(tag) {
  n += 1;
  return `${tag}-${Date.now()}-${process.pid}-${n}@werkstatt.test`;
}

test('signUp with metadata returns a session and the profile is filled', async () => {
  const supabase = client();
  const address = email('meister');
  const { data, error } = await supabase.auth.signUp({
    email: address,
    password: PASSWORD,
    options: { data: { full_name: 'Meister Müller', role: 'tradesperson' } },
  });
  assert.equal(error, null);
  assert.ok(data.session, 'accounts are confirmed at once, so sign-up brings a session');
  assert.equal(data.session.token_type, 'bearer');
  assert.equal(typeof data.session.expires_in, 'number');
  assert.equal(typeof data.session.expires_at, 'number');
  assert.equal(data.user.email, address);
  assert.equal(data.user.user_metadata.full_name, 'Meister Müller');
  assert.equal(data.user.app_metadata.provider, 'email');

  // The sign-up trigger made the profile; every signed-in user may read it.
  const { data: profile, error: profileError } = await supabase
    .from('profiles')
    .select('id, full_name, role, avatar_url')
    .eq('id', data.user.id)
    .single();
  assert.equal(profileError, null);
  assert.deepEqual(profile, { id: data.user.id, full_name: 'Meister Müller', role: 'tradesperson', avatar_url: null });

  const { data: me, error: meError } = await supabase.auth.getUser();
  assert.equal(meError, null);
  assert.equal(me.user.id, data.user.id);
  await supabase.auth.signOut();
});

test('signUp without a role makes a customer; an unknown role is refused', async () => {
  const supabase = client();
  const { data, error } = await supabase.auth.signUp({
    email: email('kundin'),
    password: PASSWORD,
    options: { data: { full_name: 'Kundin Schmidt' } },
  });
  assert.equal(error, null);
  const { data: profile } = await supabase.from('profiles').select('role').eq('id', data.user.id).single();
  assert.equal(profile.role, 'customer');
  await supabase.auth.signOut();

  const other = client();
  const refused = await other.auth.signUp({
    email: email('admin'),
    password: PASSWORD,
    options: { data: { full_name: 'Mallory', role: 'admin' } },
  });
  assert.equal(refused.error?.status, 422);
  assert.equal(refused.data.session, null);
});

test('error codes of signUp: weak_password and user_already_exists', async () => {
  const supabase = client();
  const weak = await supabase.auth.signUp({ email: email('kurz'), password: 'kurz' });
  assert.equal(weak.error?.code, 'weak_password');
  assert.equal(weak.error.status, 422);
  assert.equal(weak.error.name, 'AuthWeakPasswordError');
  assert.ok(weak.error.reasons.includes('length'), `reasons: ${weak.error.reasons}`);

  const address = email('doppelt');
  const first = await supabase.auth.signUp({ email: address, password: PASSWORD });
  assert.equal(first.error, null);
  await supabase.auth.signOut();
  // The same address in other letter case is the same account.
  const second = await client().auth.signUp({ email: address.toUpperCase(), password: PASSWORD });
  assert.equal(second.error?.code, 'user_already_exists');
  assert.equal(second.error.status, 422);
});

test('signInWithPassword, and invalid_credentials for a wrong password', async () => {
  const address = email('login');
  const signup = client();
  const created = await signup.auth.signUp({ email: address, password: PASSWORD, options: { data: { full_name: 'Lena Login' } } });
  assert.equal(created.error, null);
  await signup.auth.signOut();

  const supabase = client();
  const wrong = await supabase.auth.signInWithPassword({ email: address, password: 'Falsches-Passwort' });
  assert.equal(wrong.error?.code, 'invalid_credentials');
  assert.equal(wrong.error.status, 400);
  assert.equal(wrong.data.session, null);

  const { data, error } = await supabase.auth.signInWithPassword({ email: address, password: PASSWORD });
  assert.equal(error, null);
  assert.equal(data.user.id, created.data.user.id);
  const { data: session } = await supabase.auth.getSession();
  assert.equal(session.session.access_token, data.session.access_token);
  await supabase.auth.signOut();
});

test('refreshSession rotates the refresh token; a used one is refused', async () => {
  const supabase = client();
  const { data: created, error } = await supabase.auth.signUp({ email: email('refresh'), password: PASSWORD });
  assert.equal(error, null);
  const firstRefresh = created.session.refresh_token;

  const { data, error: refreshError } = await supabase.auth.refreshSession();
  assert.equal(refreshError, null);
  assert.notEqual(data.session.refresh_token, firstRefresh);
  assert.equal(data.user.id, created.user.id);
  // The client now works with the new session.
  const { data: me, error: meError } = await supabase.auth.getUser();
  assert.equal(meError, null);
  assert.equal(me.user.id, created.user.id);
  const { data: profile, error: restError } = await supabase.from('profiles').select('id').eq('id', created.user.id).maybeSingle();
  assert.equal(restError, null);
  assert.equal(profile.id, created.user.id);

  // Within GoTrue's reuse interval (10 s) the token just rotated still yields the session
  // (two tabs refreshing together); once its successor has been rotated too, a replay of it
  // is a reuse. So rotate once more, then replay the first token.
  const { error: secondError } = await supabase.auth.refreshSession();
  assert.equal(secondError, null);
  // Another tab replaying the first token: refused, and that ends the session.
  const replay = client();
  const reused = await replay.auth.refreshSession({ refresh_token: firstRefresh });
  assert.equal(reused.error?.code, 'refresh_token_already_used');
  // GoTrue answers 403 session_not_found, which the client reports as a missing session.
  const gone = await supabase.auth.getUser(data.session.access_token);
  assert.equal(gone.error?.name, 'AuthSessionMissingError');
  assert.equal(gone.data.user, null);
});

test('signOut ends the session on the server', async () => {
  const supabase = client();
  const { data: created } = await supabase.auth.signUp({ email: email('logout'), password: PASSWORD });
  const { access_token, refresh_token } = created.session;

  const { error } = await supabase.auth.signOut();
  assert.equal(error, null);
  const { data: local } = await supabase.auth.getSession();
  assert.equal(local.session, null);

  const probe = client();
  const user = await probe.auth.getUser(access_token);
  assert.equal(user.error?.name, 'AuthSessionMissingError', '403 session_not_found');
  assert.equal(user.data.user, null);
  const refreshed = await probe.auth.refreshSession({ refresh_token });
  assert.equal(refreshed.error?.code, 'refresh_token_not_found');
});

test('updateUser changes the password and merges metadata', async () => {
  const address = email('update');
  const supabase = client();
  await supabase.auth.signUp({ email: address, password: PASSWORD, options: { data: { full_name: 'Ulf', role: 'tradesperson' } } });

  const { data, error } = await supabase.auth.updateUser({ password: 'Ganz-Neues-Passwort-2', data: { avatar_url: 'https://example.test/ulf.png' } });
  assert.equal(error, null);
  assert.deepEqual(data.user.user_metadata, { full_name: 'Ulf', role: 'tradesperson', avatar_url: 'https://example.test/ulf.png' });
  await supabase.auth.signOut();

  const again = client();
  const old = await again.auth.signInWithPassword({ email: address, password: PASSWORD });
  assert.equal(old.error?.code, 'invalid_credentials');
  const fresh = await again.auth.signInWithPassword({ email: address, password: 'Ganz-Neues-Passwort-2' });
  assert.equal(fresh.error, null);
  await again.auth.signOut();
});
