-- The realtime change feed: capture triggers on the published tables, a NOTIFY channel every
-- server process listens on, an overflow table for changes over NOTIFY's 8000-byte limit,
-- and the batch authorizer that asks row-level security who may see which changed rows.
--
-- Why triggers + NOTIFY rather than logical decoding: it needs no `wal_level=logical`, no
-- replication slot that can fill the disk when a server is down, and every server process
-- gets every change in commit order from one LISTEN (the multi-process relay for free).
-- See ARCHITECTURE.md, "Realtime".

create schema if not exists realtime;
revoke all on schema realtime from public;

-- Changes whose JSON is too large for a NOTIFY payload; the notification carries the id.
-- Rows are removed by the server after a few minutes.
create table realtime.overflow (
  id bigserial primary key,
  payload jsonb not null,
  created_at timestamptz not null default now()
);

-- Row trigger on every published table: the change as JSON, to channel `werkfunk_changes`.
-- SECURITY DEFINER so that a caller without rights on realtime.overflow can still write a
-- large change; it reads only NEW/OLD, which the caller just wrote.
create or replace function realtime.capture() returns trigger
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
    insert into realtime.overflow (payload) values (v_payload::jsonb) returning id into v_id;
    v_payload := jsonb_build_object('overflow', v_id)::text;
  end if;
  perform pg_notify('werkfunk_changes', v_payload);
  return null;
end
$$;

-- Attaches the capture trigger to every table of the `supabase_realtime` publication that
-- lacks it; called below and again by any later migration that publishes a table.
create or replace function realtime.attach_capture() returns void
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
      'create trigger werkfunk_capture after insert or update or delete on %I.%I for each row execute function realtime.capture()',
      r.schemaname, r.tablename);
  end loop;
end
$$;

select realtime.attach_capture();

-- Which of the rows `p_ids` of `p_table` each of `p_claims` may select, decided by the
-- table's own row-level security: for each claims object, the role and claims are set for
-- the transaction and the rows are read back. One call authorizes a whole batch of changes
-- for every subscriber, instead of one round trip per subscriber per change.
--
-- Deleted rows (`p_deleted`, their old records) are first put back with triggers and
-- foreign keys off (`session_replication_role = replica`), so that the answer is "who could
-- see the row before it went". The caller MUST roll the transaction back afterwards.
--
-- Only the three API roles are honoured; any other role in a claims object is skipped.
-- Not SECURITY DEFINER (a definer function cannot SET ROLE): only the server's own
-- connection calls it; nothing is granted to the API roles.
create or replace function realtime.authorize(p_table regclass, p_ids uuid[], p_deleted jsonb, p_claims jsonb[])
returns table (claims_index integer, id uuid)
language plpgsql
as $$
declare
  i integer;
  v_role text;
  v_table text;
begin
  select format('%I.%I', n.nspname, c.relname) into v_table
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_table;
  if p_deleted is not null and jsonb_array_length(p_deleted) > 0 then
    set local session_replication_role = replica;
    execute format('insert into %s select * from jsonb_populate_recordset(null::%s, $1) on conflict do nothing', v_table, v_table)
      using p_deleted;
    set local session_replication_role = origin;
  end if;
  for i in 1 .. coalesce(array_length(p_claims, 1), 0) loop
    v_role := p_claims[i] ->> 'role';
    continue when v_role is null or v_role not in ('anon', 'authenticated', 'service_role');
    perform set_config('request.jwt.claims', p_claims[i]::text, true);
    execute format('set local role %I', v_role);
    return query execute format('select $1, t.id from %s t where t.id = any($2)', v_table) using i, p_ids;
    reset role;
  end loop;
end
$$;

revoke all on function realtime.capture(), realtime.attach_capture(),
  realtime.authorize(regclass, uuid[], jsonb, jsonb[]) from public;
