-- Device-local state that the server does not have: the outbox, drafts, settings. Kept in its
-- own file (outbox.sqlite3) so that a damaged cache can be rebuilt without touching it.

create table local.outbox (
  -- Enqueue order; per conversation, entries are delivered in this order.
  seq integer primary key autoincrement,
  -- The entry's id (UUIDv7); for a send it is the message id too.
  id text not null unique,
  conversation_id text not null,
  op text not null check (op in ('send', 'edit', 'delete', 'read')),
  message_id text,
  -- The request's JSON: {"content": …} | {"last_read_at": …} | {}.
  body text not null,
  state text not null default 'queued' check (state in ('queued', 'failed')),
  attempts integer not null default 0,
  error_code text,
  error_message text,
  created_at text not null
);

create index local.outbox_by_conversation on outbox (conversation_id, seq);

create table local.drafts (
  conversation_id text primary key,
  text text not null,
  updated_at text not null
);

-- Device settings: `dnd` (do-not-disturb), … as key → JSON value.
create table local.settings (
  key text primary key,
  value text not null
);

create table local.conversation_settings (
  conversation_id text primary key,
  muted integer not null default 0
);
