-- Full-text search over message text. Contentless (the text is in `messages`), with deletes
-- by rowid. `remove_diacritics 2` folds ä→a, é→e, …; ß has no decomposition, so it is folded
-- to "ss" before indexing (and in queries), and "Fließen" matches "fliessen" and "Fliesen…".
create virtual table messages_fts using fts5(
  content,
  content = '',
  contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 2'
);

create trigger messages_fts_insert after insert on messages begin
  insert into messages_fts (rowid, content)
  values (new.rowid, replace(replace(new.content, 'ß', 'ss'), 'ẞ', 'SS'));
end;

create trigger messages_fts_update after update of content on messages begin
  delete from messages_fts where rowid = old.rowid;
  insert into messages_fts (rowid, content)
  values (new.rowid, replace(replace(new.content, 'ß', 'ss'), 'ẞ', 'SS'));
end;

create trigger messages_fts_delete after delete on messages begin
  delete from messages_fts where rowid = old.rowid;
end;

-- Messages cached before this version.
insert into messages_fts (rowid, content)
select rowid, replace(replace(content, 'ß', 'ss'), 'ẞ', 'SS') from messages;
