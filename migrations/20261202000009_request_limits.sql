-- Limits on what one request may do to the database.
--
-- * `statement_timeout` per API role, as Supabase configures it (anon 3 s, authenticated
--   8 s). Role settings apply at login, and the server logs in as itself and switches role
--   per request, so the server reads them from `pg_db_role_setting` and sets them for each
--   request's transaction (as PostgREST does). Where the migration may not alter roles (a
--   hosted Supabase already has these settings), it says so and goes on.
-- * Size limits on the jsonb columns a member writes (`attachments`, `meta`): they ride in
--   every realtime change and every history page. NOT VALID: existing rows are not checked,
--   new and updated ones are.
-- * `type = 'system'` messages only from definer code (functions and triggers running as the
--   table owner, which row-level security does not apply to) or service_role: a member may no
--   longer post a message that clients show as coming from the system.

do $$
begin
  alter role anon set statement_timeout = '3s';
  alter role authenticated set statement_timeout = '8s';
exception when insufficient_privilege then
  raise notice 'statement_timeout of anon/authenticated not set: insufficient privilege (set it as a superuser)';
end
$$;

alter table public.messages
  add constraint messages_attachments_size check (octet_length(attachments::text) <= 16384) not valid,
  add constraint messages_meta_size check (octet_length(meta::text) <= 8192) not valid;

drop policy "Members can send messages" on public.messages;
create policy "Members can send messages"
  on public.messages for insert
  to authenticated
  with check (sender_id = auth.uid() and type is distinct from 'system' and private.is_member(conversation_id));
