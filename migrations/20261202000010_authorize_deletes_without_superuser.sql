-- `realtime.authorize` judged a DELETE by putting the deleted row back for the length of the
-- (rolled back) call with `session_replication_role = replica`, which only a superuser may
-- set: on any managed Postgres every batch with a DELETE failed and was dropped. And where a
-- new row had already taken the deleted row's key, `on conflict do nothing` skipped the old
-- one, so its DELETE was judged as the new row (or lost).
--
-- Now a deleted row is judged by what it belonged to, read from its old record: delivered to
-- those who may still see its conversation (`conversation_id`), or whose own row it was
-- (`user_id`) — a removed member still learns of their own removal. Nothing is written, so no
-- privilege beyond switching to the API roles is needed, and a reused key changes nothing:
-- a row id present in both the live table and `p_deleted` is visible if either path allows it.

create or replace function realtime.authorize(p_table regclass, p_ids uuid[], p_deleted jsonb, p_claims jsonb[])
returns table (claims_index integer, id uuid)
language plpgsql
as $$
declare
  i integer;
  v_role text;
  v_table text;
  v_conversations boolean;
begin
  select format('%I.%I', n.nspname, c.relname) into v_table
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_table;
  for i in 1 .. coalesce(array_length(p_claims, 1), 0) loop
    v_role := p_claims[i] ->> 'role';
    continue when v_role is null or v_role not in ('anon', 'authenticated', 'service_role');
    continue when not has_table_privilege(v_role, p_table, 'SELECT');
    v_conversations := has_table_privilege(v_role, 'public.conversations', 'SELECT');
    perform set_config('request.jwt.claims', p_claims[i]::text, true);
    execute format('set local role %I', v_role);
    return query execute format('select $1, t.id from %s t where t.id = any($2)', v_table) using i, p_ids;
    if p_deleted is not null and jsonb_array_length(p_deleted) > 0 then
      return query
        select i, (d ->> 'id')::uuid
          from jsonb_array_elements(p_deleted) d
         where (d ->> 'id')::uuid = any(p_ids)
           and ((v_conversations and d ? 'conversation_id' and exists (
                   select 1 from public.conversations c where c.id = (d ->> 'conversation_id')::uuid))
                or (d ? 'user_id' and (d ->> 'user_id')::uuid = auth.uid()));
    end if;
    reset role;
  end loop;
end
$$;

revoke all on function realtime.authorize(regclass, uuid[], jsonb, jsonb[]) from public;
