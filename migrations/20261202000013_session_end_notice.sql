-- A session that ends — signed out (any scope), ended by a password change or by the reuse of
-- a rotated refresh token, or deleted with its user — is announced on the change feed, so
-- that every server process closes the realtime channels joined with that session's tokens
-- at once instead of when the token expires. REST and joins already refuse such tokens
-- (`db::begin_as` looks the session up).
--
-- Only the session's id and its user's id travel; the notice is read by the server, never
-- delivered to a client.

create function werkfunk_realtime.session_ended() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('werkfunk_changes', jsonb_build_object(
    'schema', tg_table_schema,
    'table', tg_table_name,
    'type', tg_op,
    'commit_timestamp', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'record', null,
    'old_record', jsonb_build_object('id', old.id, 'user_id', old.user_id)
  )::text);
  return null;
end
$$;

revoke all on function werkfunk_realtime.session_ended() from public;

create trigger werkfunk_session_ended
  after delete on auth.sessions
  for each row execute function werkfunk_realtime.session_ended();
