-- Werkfunk's own change-feed objects move out of schema `realtime` into `werkfunk_realtime`.
--
-- `realtime` is Supabase Realtime's schema (`realtime.messages`, `realtime.subscription`,
-- `realtime.send` …), owned there by `supabase_admin`, where a project's `postgres` may not
-- create anything. Werkfunk's capture trigger function, overflow table and batch authorizer
-- are not part of that API (nothing outside the server calls them), so they get a schema of
-- their own and can never collide with, or be mistaken for, Supabase's objects.
--
-- The triggers on the published tables refer to `capture()` by oid and keep working; the two
-- functions whose bodies name the old schema are replaced. Nothing here is granted to the
-- API roles: only the server's own connection uses these objects.

create schema if not exists werkfunk_realtime;
revoke all on schema werkfunk_realtime from public;

alter table realtime.overflow set schema werkfunk_realtime;
alter function realtime.capture() set schema werkfunk_realtime;
alter function realtime.attach_capture() set schema werkfunk_realtime;
alter function realtime.authorize(regclass, uuid[], jsonb, jsonb[]) set schema werkfunk_realtime;

-- Body as in 0003, with the overflow table's new schema.
create or replace function werkfunk_realtime.capture() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_payload text;
  v_id bigint;
begin
  v_payload := jsonb_build_object(
    'schema', tg_table_schema,
    'table', tg_table_name,
    'type', tg_op,
    'commit_timestamp', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'record', case when tg_op = 'DELETE' then null else to_jsonb(new) end,
    'old_record', case when tg_op = 'INSERT' then null else to_jsonb(old) end
  )::text;
  if octet_length(v_payload) > 7900 then
    insert into werkfunk_realtime.overflow (payload) values (v_payload::jsonb) returning id into v_id;
    v_payload := jsonb_build_object('overflow', v_id)::text;
  end if;
  perform pg_notify('werkfunk_changes', v_payload);
  return null;
end
$$;

-- Body as in 0003, attaching the trigger function in its new schema.
create or replace function werkfunk_realtime.attach_capture() returns void
language plpgsql
set search_path = ''
as $$
declare
  r record;
begin
  for r in
    select p.schemaname, p.tablename
      from pg_catalog.pg_publication_tables p
     where p.pubname = 'supabase_realtime'
       and not exists (
         select 1 from pg_catalog.pg_trigger t
          join pg_catalog.pg_class c on c.oid = t.tgrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname = p.schemaname and c.relname = p.tablename and t.tgname = 'werkfunk_capture')
  loop
    execute format(
      'create trigger werkfunk_capture after insert or update or delete on %I.%I for each row execute function werkfunk_realtime.capture()',
      r.schemaname, r.tablename);
  end loop;
end
$$;

revoke all on function werkfunk_realtime.capture(), werkfunk_realtime.attach_capture(),
  werkfunk_realtime.authorize(regclass, uuid[], jsonb, jsonb[]) from public;

-- The `realtime` schema was created by 0003 for these objects only; where it is now empty and
-- ours, it goes. Anything else in it (or someone else's schema) stays as it is.
do $$
begin
  if exists (select 1 from pg_catalog.pg_namespace
              where nspname = 'realtime' and pg_catalog.pg_get_userbyid(nspowner) = current_user) then
    drop schema realtime;
  end if;
exception when dependent_objects_still_exist then
  null;
end
$$;
