-- Row visibility by membership, evaluated once per query instead of once per row.
--
-- The SELECT policies of 0002 call `private.is_member(conversation_id)` for every row a query
-- touches; a SECURITY DEFINER function cannot be inlined, so each call is set up anew
-- (~0.1 ms). Listing 50 messages, or the realtime gateway reading a batch of changed rows
-- back under a subscriber's claims, paid that per row. `private.my_conversations()` returns
-- the caller's conversation ids; used as `conversation_id in (select …)` it is an
-- uncorrelated subquery that Postgres runs once and hashes. Same rule, same answers; the
-- INSERT/UPDATE checks (one row each) keep `is_member`.

create function private.my_conversations()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select cm.conversation_id
  from public.conversation_members cm
  where cm.user_id = auth.uid()
$$;

revoke all on function private.my_conversations() from public;
grant execute on function private.my_conversations() to authenticated, service_role;

drop policy "Members can view conversations" on public.conversations;
create policy "Members can view conversations"
  on public.conversations for select
  to authenticated
  using (id in (select private.my_conversations()));

drop policy "Members can view participants" on public.conversation_members;
create policy "Members can view participants"
  on public.conversation_members for select
  to authenticated
  using (conversation_id in (select private.my_conversations()));

drop policy "Members can view messages" on public.messages;
create policy "Members can view messages"
  on public.messages for select
  to authenticated
  using (conversation_id in (select private.my_conversations()));

drop policy "Members can view typing indicators" on public.typing_indicators;
create policy "Members can view typing indicators"
  on public.typing_indicators for select
  to authenticated
  using (conversation_id in (select private.my_conversations()));
