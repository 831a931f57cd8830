-- A deleted message keeps no text in the cache, nor (through messages_fts_update) in the
-- search index; the server keeps the text for its audit trail, the app shows a tombstone.
update messages set content = '' where deleted_at is not null and content <> '';
