-- Sign-in limits keyed on account AND client address (see `auth::AuthLimits`): a stranger's
-- failures lock only that stranger's address out of the account, not its owner. The server
-- records each attempt here before the password is checked (under advisory locks on the
-- account and the address), and removes it again when the password was right.
--
-- And `user_metadata`, which rides in every access token and every realtime authorization,
-- gets a size limit (the server checks the same bound first and answers 422).

alter table auth.sign_in_failures add column address text not null default '';
create index sign_in_failures_address_idx on auth.sign_in_failures (address, failed_at);
drop index auth.sign_in_failures_email_idx;
create index sign_in_failures_email_idx on auth.sign_in_failures (email, failed_at);

alter table auth.users
  add constraint users_user_metadata_size check (octet_length(raw_user_meta_data::text) <= 4096) not valid;
