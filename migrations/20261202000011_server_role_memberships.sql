-- The server switches to `anon`, `authenticated` or `service_role` for every request
-- (`set_config('role', …)`) and in `realtime.authorize`, which needs its login role to be a
-- member of them. 0001 granted them to `authenticator` only; a server that connects as the
-- schema's owner without being a superuser (as on a managed Postgres) needs them as well.
-- A superuser is a member of every role already. Where this grant is not allowed, the
-- operator grants it (see the README, "Running the server alone").

do $$
begin
  if not (pg_has_role(current_user, 'anon', 'MEMBER')
          and pg_has_role(current_user, 'authenticated', 'MEMBER')
          and pg_has_role(current_user, 'service_role', 'MEMBER')) then
    execute format('grant anon, authenticated, service_role to %I', current_user);
  end if;
exception when insufficient_privilege then
  raise notice 'grant anon, authenticated, service_role to % yourself: insufficient privilege', current_user;
end
$$;
