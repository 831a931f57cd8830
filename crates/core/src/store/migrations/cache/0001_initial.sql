-- The cache: everything here can be rebuilt from the server. Timestamps are UTC text in one
-- fixed format (2026-11-26T10:00:00.123456Z), so text order is time order. Ids are UUID text.

create table profiles (
  id text primary key,
  full_name text not null,
  avatar_url text,
  role text not null
);

create table conversations (
  id text primary key,
  kind text not null,
  title text,
  meta text not null default '{}',
  created_at text not null,
  updated_at text not null,
  unread_count integer not null default 0,
  -- Set once the server no longer shows it to us (we left or were removed); history stays.
  left_at text
);

create table members (
  conversation_id text not null,
  user_id text not null,
  id text not null,
  role text not null,
  joined_at text not null,
  last_read_at text not null,
  primary key (conversation_id, user_id)
) without rowid;

-- Server-confirmed messages only; unsent ones live in the outbox (local.outbox).
create table messages (
  id text primary key,
  conversation_id text not null,
  sender_id text not null,
  content text not null,
  kind text not null default 'text',
  attachments text not null default '[]',
  meta text not null default '{}',
  created_at text not null,
  updated_at text not null,
  deleted_at text
);

create index messages_by_time on messages (conversation_id, created_at, id);

create table notifications (
  id text primary key,
  kind text not null,
  title text not null,
  body text,
  link text,
  read integer not null default 0,
  created_at text not null
);

create index notifications_by_time on notifications (created_at);

-- Per conversation: how far the catch-up has seen (`seen_updated_at`, server time) and how
-- far back the cache holds an unbroken history (`floor_*`; `complete` once at the start).
create table sync_cursors (
  conversation_id text primary key,
  seen_updated_at text,
  floor_created_at text,
  floor_id text,
  complete integer not null default 0
);
