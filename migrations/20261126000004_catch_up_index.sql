-- Catch-up after being offline pages through a conversation's messages by
-- (updated_at, id) from a cursor: edits and soft-deletes move updated_at, so the history
-- index on created_at does not serve it.
create index if not exists messages_conversation_updated_idx
  on public.messages (conversation_id, updated_at, id);
