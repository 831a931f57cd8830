-- `realtime.authorize` judged each subscriber's claims by reading the rows back under that
-- role; a role without SELECT on the table at all (`anon` on messages) raised
-- "permission denied", which aborted the whole call — and with it the deliveries of every
-- other subscriber in the batch. A role without the privilege simply sees nothing: it is
-- skipped, and the others are judged as before.

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
    continue when not has_table_privilege(v_role, p_table, 'SELECT');
    perform set_config('request.jwt.claims', p_claims[i]::text, true);
    execute format('set local role %I', v_role);
    return query execute format('select $1, t.id from %s t where t.id = any($2)', v_table) using i, p_ids;
    reset role;
  end loop;
end
$$;

revoke all on function realtime.authorize(regclass, uuid[], jsonb, jsonb[]) from public;
