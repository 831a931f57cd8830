-- Search ranks every match, not only the newest 500: the index no longer keeps a size per
-- message (columnsize=0). BM25 read that size for every matching row (one random read per
-- match: nearly all the cost of ranking a common word over a million messages). Without it,
-- BM25 ranks by how often and how rare the words are; the length of a message no longer
-- weighs (chat messages are short anyway). FTS5 refuses contentless_delete with
-- columnsize=0, so a delete names the text that was indexed, as classic contentless tables
-- do: the folded text is a pure function of the row's `content`, so it is always the same.
drop trigger messages_fts_insert;
drop trigger messages_fts_update;
drop trigger messages_fts_delete;
drop table messages_fts;

create virtual table messages_fts using fts5(
  content,
  content = '',
  columnsize = 0,
  tokenize = 'unicode61 remove_diacritics 2'
);

create trigger messages_fts_insert after insert on messages begin
  insert into messages_fts (rowid, content)
  values (new.rowid, replace(replace(new.content, 'ß', 'ss'), 'ẞ', 'SS'));
end;

create trigger messages_fts_update after update of content on messages begin
  insert into messages_fts (messages_fts, rowid, content)
  values ('delete', old.rowid, replace(replace(old.content, 'ß', 'ss'), 'ẞ', 'SS'));
  insert into messages_fts (rowid, content)
  values (new.rowid, replace(replace(new.content, 'ß', 'ss'), 'ẞ', 'SS'));
end;

create trigger messages_fts_delete after delete on messages begin
  insert into messages_fts (messages_fts, rowid, content)
  values ('delete', old.rowid, replace(replace(old.content, 'ß', 'ss'), 'ẞ', 'SS'));
end;

insert into messages_fts (rowid, content)
select rowid, replace(replace(content, 'ß', 'ss'), 'ẞ', 'SS') from messages;
