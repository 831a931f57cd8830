-- The outbox also carries notification read marks (one, or all up to a time), so the bell
-- works offline like everything else. SQLite cannot widen a CHECK in place: the table is
-- rebuilt inside this migration's transaction, keeping every entry and its seq.

create table local.outbox_v2 (
  seq integer primary key autoincrement,
  id text not null unique,
  conversation_id text not null,
  op text not null check (op in ('send', 'edit', 'delete', 'read', 'notification_read')),
  message_id text,
  body text not null,
  state text not null default 'queued' check (state in ('queued', 'failed')),
  attempts integer not null default 0,
  error_code text,
  error_message text,
  created_at text not null
);

insert into local.outbox_v2 (seq, id, conversation_id, op, message_id, body, state, attempts, error_code, error_message, created_at)
select seq, id, conversation_id, op, message_id, body, state, attempts, error_code, error_message, created_at from local.outbox;

drop table local.outbox;
alter table local.outbox_v2 rename to outbox;
create index local.outbox_by_conversation on outbox (conversation_id, seq);
