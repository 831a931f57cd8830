-- The messaging schema of the seed (communication-realtime-pattern.md): profiles,
-- conversations, members, messages, read receipts, typing indicators and notifications,
-- with their row-level security, triggers, RPC functions and realtime publication.
--
-- It keeps the seed's intent and fixes its traps on Postgres 15 (see BRIEF.md, "Known traps"):
-- * membership checks go through `private.is_member` / `private.member_role`, STABLE SECURITY
--   DEFINER functions in a schema that /rpc does not expose, so no policy reads the table it
--   protects (the seed's "Members can view participants" recursed infinitely);
-- * triggers that write to other tables run as SECURITY DEFINER with `search_path = ''`, so a
--   plain member's message bumps the conversation and creates notifications under RLS;
-- * the messages UPDATE policy has a WITH CHECK, and column grants limit what can change;
-- * `type` is NOT NULL, so the content check cannot be dodged with a NULL type;
-- * the publication is created and filled only where it is missing (roles and publications
--   are guarded so a second database in the same cluster migrates too);
-- * EXECUTE on every function is revoked from PUBLIC (functions are executable by everyone by
--   default) and from anon.
--
-- No table gets privileges through `alter default privileges`: every grant is explicit, and
-- every table revokes first, so applying this to a Supabase project (whose default privileges
-- grant everything to anon and authenticated) ends in the same state.
--
-- The migration relies on auth.users, auth.uid() and the API roles of 20261126000001_auth.sql
-- (or a real Supabase project, which has all of them).

-- ---------------------------------------------------------------------------------------------
-- Private schema: helpers for policies and triggers. Not in PostgREST's exposed schemas, so
-- none of it is callable over /rpc; `authenticated` needs USAGE and EXECUTE only because
-- policy expressions run with the privileges of the querying role.
-- ---------------------------------------------------------------------------------------------

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

-- One profile per auth user; filled by the sign-up trigger below. Every foreign key from the
-- messaging tables to a user points here (and only here), so PostgREST embeds such as
-- `sender:sender_id(full_name,avatar_url)` resolve to exactly one relationship; the cascade
-- from auth.users still reaches them through this table.
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  full_name text not null default '',
  avatar_url text,
  role text not null default 'customer',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint profiles_role_check check (role in ('tradesperson', 'customer')),
  -- Bounds so that a profile cannot be used to store megabytes of text.
  constraint profiles_full_name_length check (char_length(full_name) <= 200),
  constraint profiles_avatar_url_length check (char_length(avatar_url) <= 2048)
);

-- Conversations (1:1 or groups). The seed's `type` comment becomes a check.
create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  type text not null default 'direct',
  title text,
  meta jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint conversations_type_check check (type in ('direct', 'group', 'project')),
  constraint conversations_title_length check (char_length(title) <= 200),
  constraint conversations_meta_object check (jsonb_typeof(meta) = 'object')
);

-- Conversation members (M:N). `role` and the timestamps are NOT NULL: the membership
-- functions and unread counts depend on them.
create table public.conversation_members (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  role text not null default 'member',
  joined_at timestamptz not null default now(),
  last_read_at timestamptz not null default now(),
  unique (conversation_id, user_id),
  constraint conversation_members_role_check check (role in ('owner', 'admin', 'member'))
);

create index idx_conversation_members_user on public.conversation_members (user_id);
create index idx_conversation_members_conversation on public.conversation_members (conversation_id);

-- Messages. The id may come from the client (the outbox's idempotency key; clients use
-- UUIDv7, so ordering by (created_at, id) keeps send order when created_at ties).
-- `created_at` is always the server's (forced by a trigger, not updatable), `updated_at` moves
-- on every update, `deleted_at` marks a soft delete that keeps the content (audit trail).
create table public.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  -- Defaults to the caller so a client may omit it; the INSERT policy checks it anyway.
  sender_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  content text not null,
  -- NOT NULL: with a NULL type the seed's valid_content check passes for empty content.
  type text not null default 'text',
  attachments jsonb not null default '[]',
  meta jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  constraint messages_type_check check (type in ('text', 'image', 'file', 'system')),
  constraint messages_content_length check (char_length(content) <= 10000),
  -- A text message needs visible content: whitespace-only (spaces, tabs, line breaks) is
  -- refused as well as the empty string.
  constraint valid_content check (
    (type = 'text' and char_length(btrim(content, E' \t\r\n\f\v')) > 0) or
    (type <> 'text')
  ),
  constraint messages_attachments_array check (jsonb_typeof(attachments) = 'array'),
  constraint messages_meta_object check (jsonb_typeof(meta) = 'object')
);

-- History is read newest first by (created_at, id); the id breaks created_at ties. This
-- replaces the seed's (conversation_id, created_at desc), which it covers.
create index idx_messages_conversation on public.messages (conversation_id, created_at desc, id desc);
create index idx_messages_sender on public.messages (sender_id);

-- Read receipts (optional in the seed).
create table public.message_reads (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null references public.messages (id) on delete cascade,
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  read_at timestamptz not null default now(),
  unique (message_id, user_id)
);

create index idx_message_reads_user on public.message_reads (user_id);

-- Typing indicators: optional persistence only. Typing itself goes over broadcast
-- ("Typing = Broadcast" in the seed); rows here expire after 10 seconds.
create table public.typing_indicators (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  typing_at timestamptz not null default now(),
  unique (conversation_id, user_id)
);

create index idx_typing_indicators_user on public.typing_indicators (user_id);

-- Notifications (in-app), written by the message trigger; a user reads and marks their own.
create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  type text not null, -- 'message' | 'system' | 'mention'
  title text not null,
  body text,
  link text,
  read boolean not null default false,
  created_at timestamptz not null default now()
);

create index idx_notifications_user_unread on public.notifications (user_id, read, created_at desc);

-- ---------------------------------------------------------------------------------------------
-- Membership functions (used by every policy that asks "is the caller a member?")
-- ---------------------------------------------------------------------------------------------

-- SECURITY DEFINER: reads conversation_members as the owner, so RLS on that table is not
-- applied inside and no policy recurses into itself. STABLE: one answer per statement.
-- `search_path = ''`: every name is schema-qualified, nothing can be shadowed by the caller.
create function private.is_member(p_conversation_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.conversation_members cm
    where cm.conversation_id = p_conversation_id
      and cm.user_id = auth.uid()
  )
$$;

-- The caller's role in a conversation ('owner' | 'admin' | 'member'), or NULL for outsiders.
create function private.member_role(p_conversation_id uuid)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select cm.role
  from public.conversation_members cm
  where cm.conversation_id = p_conversation_id
    and cm.user_id = auth.uid()
$$;

revoke all on function private.is_member(uuid), private.member_role(uuid) from public;
grant execute on function private.is_member(uuid), private.member_role(uuid)
  to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Trigger functions (in `private`, so they never show up under /rpc)
-- ---------------------------------------------------------------------------------------------

-- Sign-up: create the profile from the GoTrue metadata keys `full_name` and `role`.
-- SECURITY DEFINER because whoever inserts into auth.users need not be allowed to write
-- profiles. An unknown role raises 22023 (invalid_parameter_value), which the server turns
-- into a 422 at sign-up; a missing (or JSON null) role means 'customer'.
create function private.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_role text := coalesce(new.raw_user_meta_data ->> 'role', 'customer');
  v_full_name text := coalesce(btrim(new.raw_user_meta_data ->> 'full_name'), '');
begin
  if v_role not in ('tradesperson', 'customer') then
    raise exception 'invalid role "%": must be "tradesperson" or "customer"', v_role
      using errcode = '22023';
  end if;
  insert into public.profiles (id, full_name, role)
  values (new.id, v_full_name, v_role);
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row
  execute function private.handle_new_user();

-- Generic `updated_at = now()` on every update (profiles, conversations).
create function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger set_updated_at
  before update on public.profiles
  for each row
  execute function private.set_updated_at();

create trigger set_updated_at
  before update on public.conversations
  for each row
  execute function private.set_updated_at();

-- Messages on insert: the timestamps are the server's, whatever the client (or its clock)
-- sent. The column grants already keep authenticated from naming them; this also covers
-- service_role and any future grant.
create function private.messages_before_insert()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.created_at := now();
  new.updated_at := now();
  return new;
end;
$$;

create trigger messages_before_insert
  before insert on public.messages
  for each row
  execute function private.messages_before_insert();

-- Messages on update: created_at never changes, updated_at moves, and a soft delete is
-- stamped with the server's time and is final: a deleted message keeps its content for the
-- audit trail, so it can be neither restored nor edited (23514, a 400 over REST). Deleting
-- again is a no-op that keeps the first stamp, so a replayed delete succeeds.
create function private.messages_before_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.created_at := old.created_at;
  new.updated_at := now();
  if old.deleted_at is not null then
    if new.deleted_at is null then
      raise exception 'message % is deleted and cannot be restored', old.id
        using errcode = '23514';
    end if;
    if new.content is distinct from old.content then
      raise exception 'message % is deleted and cannot be edited', old.id
        using errcode = '23514';
    end if;
    new.deleted_at := old.deleted_at;
  elsif new.deleted_at is not null then
    new.deleted_at := now();
  end if;
  return new;
end;
$$;

create trigger messages_before_update
  before update on public.messages
  for each row
  execute function private.messages_before_update();

-- The seed's update_conversation_timestamp. SECURITY DEFINER: a plain member has no UPDATE
-- on conversations (only owners/admins, only title/meta), yet their message must move the
-- conversation up the list.
create function private.update_conversation_timestamp()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.conversations
  set updated_at = now()
  where id = new.conversation_id;
  return new;
end;
$$;

create trigger on_message_created
  after insert on public.messages
  for each row
  execute function private.update_conversation_timestamp();

-- The seed's notify_on_new_message: one notification for every member except the sender.
-- SECURITY DEFINER with a fixed search_path: authenticated may not insert notifications, and
-- must not see the other members' rows.
create function private.notify_on_new_message()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.notifications (user_id, type, title, body, link)
  select
    cm.user_id,
    'message',
    'Neue Nachricht',
    left(new.content, 100),
    '/conversations/' || new.conversation_id
  from public.conversation_members cm
  where cm.conversation_id = new.conversation_id
    and cm.user_id <> new.sender_id;
  return new;
end;
$$;

create trigger on_message_notify
  after insert on public.messages
  for each row
  execute function private.notify_on_new_message();

-- last_read_at never moves backwards nor into the future, so a wrong laptop clock or a
-- replayed outbox cannot corrupt unread counts. Only the column changes; everything else a
-- member might send is stopped by the column grants.
create function private.clamp_last_read_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.last_read_at := greatest(old.last_read_at, least(coalesce(new.last_read_at, old.last_read_at), now()));
  return new;
end;
$$;

create trigger clamp_last_read_at
  before update of last_read_at on public.conversation_members
  for each row
  execute function private.clamp_last_read_at();

-- Typing rows carry the server's time, so a client clock cannot keep an indicator alive.
create function private.typing_indicators_stamp()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.typing_at := now();
  return new;
end;
$$;

create trigger typing_indicators_stamp
  before insert or update on public.typing_indicators
  for each row
  execute function private.typing_indicators_stamp();

-- The seed's cleanup (rows older than 10 s). SECURITY DEFINER: it deletes other users' rows,
-- which the caller's DELETE policy would hide. It fires only on writes; readers should still
-- ignore rows older than 10 s, and the live indicator goes over broadcast anyway.
create function private.cleanup_old_typing_indicators()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from public.typing_indicators
  where typing_at < now() - interval '10 seconds';
  return null;
end;
$$;

create trigger on_typing_indicator_cleanup
  after insert or update on public.typing_indicators
  for each statement
  execute function private.cleanup_old_typing_indicators();

revoke all on function
  private.handle_new_user(),
  private.set_updated_at(),
  private.messages_before_insert(),
  private.messages_before_update(),
  private.update_conversation_timestamp(),
  private.notify_on_new_message(),
  private.clamp_last_read_at(),
  private.typing_indicators_stamp(),
  private.cleanup_old_typing_indicators()
from public;

-- ---------------------------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------------------------

alter table public.profiles enable row level security;
alter table public.conversations enable row level security;
alter table public.conversation_members enable row level security;
alter table public.messages enable row level security;
alter table public.message_reads enable row level security;
alter table public.typing_indicators enable row level security;
alter table public.notifications enable row level security;

-- Profiles: a marketplace, so every signed-in user reads every profile; the owner edits their
-- own (full_name and avatar_url only, by column grant).
create policy "Signed-in users can view profiles"
  on public.profiles for select
  to authenticated
  using (true);

create policy "Users can update own profile"
  on public.profiles for update
  to authenticated
  using (id = auth.uid())
  with check (id = auth.uid());

-- Conversations: members read; owners and admins edit title and meta. No INSERT or DELETE
-- policy: conversations are created through create_conversation().
create policy "Members can view conversations"
  on public.conversations for select
  to authenticated
  using (private.is_member(id));

create policy "Members can update conversations"
  on public.conversations for update
  to authenticated
  using (private.member_role(id) in ('owner', 'admin'))
  with check (private.member_role(id) in ('owner', 'admin'));

-- Members: the seed's "Members can view participants", through is_member instead of a
-- self-referencing subquery (which raised "infinite recursion detected in policy").
-- Membership changes go through the RPC functions; a member may only move their own
-- last_read_at (column grant plus the clamp trigger).
create policy "Members can view participants"
  on public.conversation_members for select
  to authenticated
  using (private.is_member(conversation_id));

create policy "Members can mark own membership read"
  on public.conversation_members for update
  to authenticated
  using (user_id = auth.uid())
  with check (user_id = auth.uid());

-- Messages.
create policy "Members can view messages"
  on public.messages for select
  to authenticated
  using (private.is_member(conversation_id));

create policy "Members can send messages"
  on public.messages for insert
  to authenticated
  with check (sender_id = auth.uid() and private.is_member(conversation_id));

-- The seed had no WITH CHECK here: an UPDATE could move a message into a conversation its
-- sender is not in. The column grants (content, deleted_at) forbid moving it at all; the
-- WITH CHECK keeps the rule even if a grant is widened later.
create policy "Sender can update own messages"
  on public.messages for update
  to authenticated
  using (sender_id = auth.uid() and private.is_member(conversation_id))
  with check (sender_id = auth.uid() and private.is_member(conversation_id));

-- Read receipts: visible to the members of the message's conversation; a user records only
-- their own, and only for messages they can see. The subquery on messages runs under the
-- messages policy, which uses is_member, so nothing recurses.
create policy "Members can view read receipts"
  on public.message_reads for select
  to authenticated
  using (
    exists (
      select 1 from public.messages m
      where m.id = message_reads.message_id
        and private.is_member(m.conversation_id)
    )
  );

create policy "Users can mark messages read"
  on public.message_reads for insert
  to authenticated
  with check (
    user_id = auth.uid() and
    exists (
      select 1 from public.messages m
      where m.id = message_reads.message_id
        and private.is_member(m.conversation_id)
    )
  );

-- Typing indicators: members of the conversation see them; each user writes only their own,
-- and only in conversations they belong to.
create policy "Members can view typing indicators"
  on public.typing_indicators for select
  to authenticated
  using (private.is_member(conversation_id));

create policy "Users can insert own typing indicator"
  on public.typing_indicators for insert
  to authenticated
  with check (user_id = auth.uid() and private.is_member(conversation_id));

create policy "Users can update own typing indicator"
  on public.typing_indicators for update
  to authenticated
  using (user_id = auth.uid() and private.is_member(conversation_id))
  with check (user_id = auth.uid() and private.is_member(conversation_id));

create policy "Users can delete own typing indicator"
  on public.typing_indicators for delete
  to authenticated
  using (user_id = auth.uid());

-- Notifications: private to their user; only `read` may change (column grant). Rows are
-- written by the SECURITY DEFINER trigger, never by a client.
create policy "Users can view own notifications"
  on public.notifications for select
  to authenticated
  using (user_id = auth.uid());

create policy "Users can mark own notifications read"
  on public.notifications for update
  to authenticated
  using (user_id = auth.uid())
  with check (user_id = auth.uid());

-- ---------------------------------------------------------------------------------------------
-- Table privileges. Revoke first (a Supabase project grants everything by default), then
-- grant exactly what the policies above are meant to decide on. anon gets nothing.
-- service_role bypasses RLS and gets everything. No table has a sequence (uuid keys), so
-- there are no sequence grants to make.
-- ---------------------------------------------------------------------------------------------

revoke all on table
  public.profiles,
  public.conversations,
  public.conversation_members,
  public.messages,
  public.message_reads,
  public.typing_indicators,
  public.notifications
from public, anon, authenticated;

grant all on table
  public.profiles,
  public.conversations,
  public.conversation_members,
  public.messages,
  public.message_reads,
  public.typing_indicators,
  public.notifications
to service_role;

grant select on table public.profiles to authenticated;
grant update (full_name, avatar_url) on table public.profiles to authenticated;

grant select on table public.conversations to authenticated;
grant update (title, meta) on table public.conversations to authenticated;

grant select on table public.conversation_members to authenticated;
grant update (last_read_at) on table public.conversation_members to authenticated;

grant select on table public.messages to authenticated;
grant insert (id, conversation_id, sender_id, content, type, attachments, meta)
  on table public.messages to authenticated;
grant update (content, deleted_at) on table public.messages to authenticated;

-- read_at is the server's (its default); a client names only the message (and may bring id).
grant select on table public.message_reads to authenticated;
grant insert (id, message_id, user_id) on table public.message_reads to authenticated;

-- UPDATE covers conversation_id and user_id too because a PostgREST upsert
-- (merge-duplicates) sets every column it was sent; the policy's WITH CHECK still pins the
-- row to the caller and to a conversation they belong to, and typing_at is stamped by trigger.
grant select, delete on table public.typing_indicators to authenticated;
grant insert (id, conversation_id, user_id, typing_at) on table public.typing_indicators to authenticated;
grant update (conversation_id, user_id, typing_at) on table public.typing_indicators to authenticated;

grant select on table public.notifications to authenticated;
grant update (read) on table public.notifications to authenticated;

-- ---------------------------------------------------------------------------------------------
-- RPC functions (POST /rpc/<name>). Each one acting for a user checks auth.uid() itself and
-- raises 42501 'not authenticated' without it. Those that must see past RLS are SECURITY
-- DEFINER with `search_path = ''` and check membership explicitly.
-- ---------------------------------------------------------------------------------------------

-- Creates a conversation with the caller as owner and p_member_ids as members.
-- For 'direct': exactly one other person; an existing direct conversation in which both are
-- still members is returned instead. Two simultaneous calls for the same pair are serialised
-- by a transaction-scoped advisory lock on the (ordered) pair, taken before the lookup; in
-- READ COMMITTED each statement of this function takes a fresh snapshot, so the second caller
-- sees the first one's committed conversation once it gets the lock.
create function public.create_conversation(p_type text, p_title text, p_member_ids uuid[])
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_others uuid[];
  v_other uuid;
  v_missing uuid;
  v_id uuid;
begin
  if v_uid is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;
  if p_type is null or p_type not in ('direct', 'group', 'project') then
    raise exception 'invalid conversation type "%": must be direct, group or project', p_type
      using errcode = '22023';
  end if;

  -- The other members: distinct, without NULLs and without the caller.
  select coalesce(array_agg(distinct m), '{}')
  into v_others
  from unnest(coalesce(p_member_ids, '{}')) as m
  where m is not null and m <> v_uid;

  select m into v_missing
  from unnest(v_others) as m
  where not exists (select 1 from public.profiles p where p.id = m)
  limit 1;
  if v_missing is not null then
    raise exception 'unknown user %', v_missing using errcode = '23503';
  end if;

  if p_type = 'direct' then
    if cardinality(v_others) <> 1 then
      raise exception 'a direct conversation needs exactly one other member'
        using errcode = '22023';
    end if;
    v_other := v_others[1];

    perform pg_advisory_xact_lock(
      hashtextextended(least(v_uid, v_other)::text || greatest(v_uid, v_other)::text, 0)
    );

    select c.id into v_id
    from public.conversations c
    where c.type = 'direct'
      and exists (select 1 from public.conversation_members cm
                  where cm.conversation_id = c.id and cm.user_id = v_uid)
      and exists (select 1 from public.conversation_members cm
                  where cm.conversation_id = c.id and cm.user_id = v_other)
    order by c.created_at, c.id
    limit 1;
    if v_id is not null then
      return v_id;
    end if;
  end if;

  insert into public.conversations (type, title)
  values (p_type, nullif(btrim(p_title), ''))
  returning id into v_id;

  insert into public.conversation_members (conversation_id, user_id, role)
  values (v_id, v_uid, 'owner');

  insert into public.conversation_members (conversation_id, user_id, role)
  select v_id, m, 'member'
  from unnest(v_others) as m;

  return v_id;
end;
$$;

-- The seed's unread count, restricted to the caller: p_user_id must be auth.uid() (42501
-- otherwise), and an outsider gets 0 instead of the seed's count of every message since 1970.
create function public.get_unread_message_count(p_conversation_id uuid, p_user_id uuid)
returns integer
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_last_read_at timestamptz;
  v_count integer;
begin
  if v_uid is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;
  if p_user_id is distinct from v_uid then
    raise exception 'unread counts are only available for the caller' using errcode = '42501';
  end if;

  select cm.last_read_at into v_last_read_at
  from public.conversation_members cm
  where cm.conversation_id = p_conversation_id
    and cm.user_id = v_uid;
  if not found then
    return 0;
  end if;

  select count(*)::integer into v_count
  from public.messages m
  where m.conversation_id = p_conversation_id
    and m.created_at > v_last_read_at
    and m.sender_id <> v_uid
    and m.deleted_at is null;

  return v_count;
end;
$$;

-- Unread counts for all of the caller's conversations in one call (zero counts included).
create function public.get_unread_counts()
returns table (conversation_id uuid, unread_count integer)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;

  -- Every column is qualified: the OUT parameters share these names.
  return query
  select
    cm.conversation_id,
    (
      select count(*)::integer
      from public.messages m
      where m.conversation_id = cm.conversation_id
        and m.created_at > cm.last_read_at
        and m.sender_id <> v_uid
        and m.deleted_at is null
    )
  from public.conversation_members cm
  where cm.user_id = v_uid;
end;
$$;

-- Owners and admins add members to a group or project conversation (not to a direct one).
-- Existing members are skipped, so a retried call succeeds.
create function public.add_conversation_members(p_conversation_id uuid, p_user_ids uuid[])
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_type text;
  v_missing uuid;
begin
  if v_uid is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;
  -- Outsiders get the same answer whether or not the conversation exists, and the role is
  -- checked before anything else is read. Concurrent adds of the same person are settled
  -- by the unique key (ON CONFLICT below).
  if coalesce(private.member_role(p_conversation_id), '') not in ('owner', 'admin') then
    raise exception 'only the owner or an admin can add members' using errcode = '42501';
  end if;
  select c.type into v_type from public.conversations c where c.id = p_conversation_id;
  if v_type = 'direct' then
    raise exception 'members cannot be added to a direct conversation' using errcode = '22023';
  end if;

  select m into v_missing
  from unnest(coalesce(p_user_ids, '{}')) as m
  where m is not null
    and not exists (select 1 from public.profiles p where p.id = m)
  limit 1;
  if v_missing is not null then
    raise exception 'unknown user %', v_missing using errcode = '23503';
  end if;

  insert into public.conversation_members (conversation_id, user_id, role)
  select distinct p_conversation_id, m, 'member'
  from unnest(coalesce(p_user_ids, '{}')) as m
  where m is not null
  on conflict (conversation_id, user_id) do nothing;
end;
$$;

-- Owners and admins remove members. The owner cannot be removed (the owner leaves instead),
-- only the owner removes admins, and direct conversations have no removal (leave instead).
-- Removing someone who is not a member is a no-op, so a retried call succeeds.
create function public.remove_conversation_member(p_conversation_id uuid, p_user_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_type text;
  v_caller_role text;
  v_target_role text;
begin
  if v_uid is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;
  v_caller_role := private.member_role(p_conversation_id);
  if coalesce(v_caller_role, '') not in ('owner', 'admin') then
    raise exception 'only the owner or an admin can remove members' using errcode = '42501';
  end if;
  -- Only now (an outsider must not be able to hold the row) lock the conversation, so that
  -- this removal and an ownership transfer by leave_conversation happen one after the other.
  select c.type into v_type
  from public.conversations c
  where c.id = p_conversation_id
  for update;
  if v_type = 'direct' then
    raise exception 'members cannot be removed from a direct conversation' using errcode = '22023';
  end if;

  select cm.role into v_target_role
  from public.conversation_members cm
  where cm.conversation_id = p_conversation_id
    and cm.user_id = p_user_id;
  if not found then
    return;
  end if;
  if v_target_role = 'owner' then
    raise exception 'the owner cannot be removed' using errcode = '42501';
  end if;
  if v_target_role = 'admin' and v_caller_role <> 'owner' and p_user_id <> v_uid then
    raise exception 'only the owner can remove an admin' using errcode = '42501';
  end if;

  delete from public.conversation_members cm
  where cm.conversation_id = p_conversation_id
    and cm.user_id = p_user_id;
end;
$$;

-- The caller leaves. When the last owner leaves, the longest-standing admin, else the
-- longest-standing member, becomes owner. Leaving a conversation one is not in is a no-op.
create function public.leave_conversation(p_conversation_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_role text;
  v_successor uuid;
begin
  if v_uid is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;
  delete from public.conversation_members cm
  where cm.conversation_id = p_conversation_id
    and cm.user_id = v_uid
  returning cm.role into v_role;
  if v_role is distinct from 'owner' then
    return;
  end if;
  -- An owner left: lock the conversation so that two owners leaving at once (or a removal
  -- running beside) settle one after the other; in READ COMMITTED the statements below see
  -- what the other transaction committed.
  perform 1 from public.conversations c where c.id = p_conversation_id for update;
  if exists (select 1 from public.conversation_members cm
             where cm.conversation_id = p_conversation_id and cm.role = 'owner') then
    return;
  end if;

  select cm.user_id into v_successor
  from public.conversation_members cm
  where cm.conversation_id = p_conversation_id
  order by (cm.role = 'admin') desc, cm.joined_at, cm.id
  limit 1;
  if v_successor is not null then
    update public.conversation_members cm
    set role = 'owner'
    where cm.conversation_id = p_conversation_id
      and cm.user_id = v_successor;
  end if;
end;
$$;

-- Name search for starting a conversation: case-insensitive substring of full_name, with the
-- query's LIKE wildcards (% and _) and the escape character taken literally; at most 20 rows.
-- SECURITY INVOKER is enough: every signed-in user may read every profile.
create function public.search_profiles(p_query text)
returns setof public.profiles
language plpgsql
stable
set search_path = ''
as $$
declare
  v_pattern text;
begin
  if auth.uid() is null then
    raise exception 'not authenticated' using errcode = '42501';
  end if;
  v_pattern := '%'
    || replace(replace(replace(btrim(coalesce(p_query, '')), '\', '\\'), '%', '\%'), '_', '\_')
    || '%';
  return query
  select p.*
  from public.profiles p
  where p.full_name ilike v_pattern escape '\'
  order by p.full_name, p.id
  limit 20;
end;
$$;

revoke all on function
  public.create_conversation(text, text, uuid[]),
  public.get_unread_message_count(uuid, uuid),
  public.get_unread_counts(),
  public.add_conversation_members(uuid, uuid[]),
  public.remove_conversation_member(uuid, uuid),
  public.leave_conversation(uuid),
  public.search_profiles(text)
from public, anon;

grant execute on function
  public.create_conversation(text, text, uuid[]),
  public.get_unread_message_count(uuid, uuid),
  public.get_unread_counts(),
  public.add_conversation_members(uuid, uuid[]),
  public.remove_conversation_member(uuid, uuid),
  public.leave_conversation(uuid),
  public.search_profiles(text)
to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Realtime
-- ---------------------------------------------------------------------------------------------

-- DELETE events are authorised on conversation_id and must carry it in old_record: without
-- REPLICA IDENTITY FULL the WAL holds only the primary key of a deleted row. typing_indicators
-- is included for the same reason (the cleanup trigger deletes rows).
alter table public.messages replica identity full;
alter table public.conversation_members replica identity full;
alter table public.typing_indicators replica identity full;

-- The seed's `alter publication supabase_realtime add table …` fails where the publication
-- does not exist (and when a table is already in it); create and fill it only as needed.
-- A publication FOR ALL TABLES already carries everything and cannot take ADD TABLE.
do $$
declare
  v_table text;
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if (select puballtables from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    return;
  end if;
  foreach v_table in array array[
    'messages', 'conversations', 'conversation_members', 'notifications', 'typing_indicators'
  ] loop
    if not exists (
      select 1 from pg_catalog.pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = v_table
    ) then
      execute format('alter publication supabase_realtime add table public.%I', v_table);
    end if;
  end loop;
end
$$;

-- Already granted by the auth migration; repeated so this file stands alone on Supabase.
grant usage on schema public to anon, authenticated, service_role;
