-- A soft-deleted message's text is no longer readable by anyone but `service_role`.
--
-- Until now `deleted_at` only marked the row: `content` stayed, the SELECT policy does not look
-- at `deleted_at`, so any member could read deleted texts over REST
-- (`messages?deleted_at=not.is.null`), the realtime UPDATE carried them, and the notification
-- kept the first 100 characters. A user who deletes a message expects its text gone for
-- everyone else.
--
-- Now, when a message is soft-deleted, its `content` becomes '' and its `attachments` '[]' in
-- the row everyone reads (the row itself stays, so history keeps its tombstone and the seed's
-- `deleted_at is null` filter works as before), the notification preview of the message is
-- cleared (`body` null), and the text and attachments move to
-- `private.deleted_message_texts`, which only `service_role` may read (for disputes on the
-- marketplace; never exposed through the REST API, which serves `public` only).

create table private.deleted_message_texts (
  message_id uuid primary key references public.messages (id) on delete cascade,
  content text not null,
  attachments jsonb not null,
  deleted_at timestamptz not null
);
revoke all on table private.deleted_message_texts from public, anon, authenticated;
grant select on table private.deleted_message_texts to service_role;

-- A deleted text message has empty content; every other one still needs visible text.
alter table public.messages drop constraint valid_content;
alter table public.messages add constraint valid_content check (
  deleted_at is not null or
  (type = 'text' and char_length(btrim(content, E' \t\r\n\f\v')) > 0) or
  (type <> 'text')
);

-- Runs after `messages_before_update` (triggers of one event fire in name order), which has
-- stamped `deleted_at` and refused edits of deleted messages. SECURITY DEFINER: the member
-- deleting may neither write the archive nor update others' notifications.
create function private.messages_soft_delete()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.deleted_at is null and new.deleted_at is not null then
    insert into private.deleted_message_texts (message_id, content, attachments, deleted_at)
    values (old.id, old.content, old.attachments, new.deleted_at)
    on conflict (message_id) do nothing;
    -- The notification trigger wrote these rows in the message's own transaction: same
    -- conversation link, same timestamp, the same first 100 characters.
    update public.notifications n
       set body = null
     where n.type = 'message'
       and n.link = '/conversations/' || old.conversation_id
       and n.created_at = old.created_at
       and n.body is not distinct from left(old.content, 100);
    new.content := '';
    new.attachments := '[]'::jsonb;
  end if;
  return new;
end;
$$;

revoke all on function private.messages_soft_delete() from public;

create trigger messages_soft_delete
  before update on public.messages
  for each row
  execute function private.messages_soft_delete();

-- Messages deleted before this migration: archived and cleared the same way (with the
-- update triggers off, since they refuse any change to a deleted message's content).
insert into private.deleted_message_texts (message_id, content, attachments, deleted_at)
select m.id, m.content, m.attachments, m.deleted_at
  from public.messages m
 where m.deleted_at is not null
on conflict (message_id) do nothing;

update public.notifications n
   set body = null
  from public.messages m
 where m.deleted_at is not null
   and n.type = 'message'
   and n.link = '/conversations/' || m.conversation_id
   and n.created_at = m.created_at
   and n.body is not distinct from left(m.content, 100);

alter table public.messages disable trigger user;
update public.messages set content = '', attachments = '[]'::jsonb where deleted_at is not null;
alter table public.messages enable trigger user;
