-- Before anything else: the three API roles must exist when a role that is not a superuser
-- migrates a fresh database. `service_role` bypasses row-level security, and only a
-- superuser may create such a role, so on a managed Postgres (or for any owner without
-- superuser) an operator creates the roles once per cluster with `deploy/roles.sql` (see the
-- README, "Database role"). Without this check the auth migration would stop at its
-- CREATE ROLE with a bare "permission denied to create role".
--
-- Numbered before the auth migration so that a fresh database checks first. On a database
-- migrated before it existed, it runs after the others and checks nothing (the auth schema
-- is there already). A superuser passes: the auth migration creates what is missing.

do $$
declare
  v_missing text[];
  v_cannot_grant text[];
begin
  if (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
     or to_regclass('auth.users') is not null then
    return;
  end if;

  select array_agg(r order by o) into v_missing
    from unnest(array['anon', 'authenticated', 'service_role', 'authenticator']) with ordinality as t(r, o)
   where not exists (select 1 from pg_catalog.pg_roles where rolname = r)
     -- authenticator bypasses nothing: an owner with CREATEROLE may create it.
     and not (r = 'authenticator'
              and (select rolcreaterole from pg_catalog.pg_roles where rolname = current_user));
  if v_missing is not null then
    raise exception using
      errcode = 'insufficient_privilege',
      message = format(
        'missing role(s) %s: %s is not a superuser and may not create them (service_role bypasses row-level security). '
        'Run deploy/roles.sql once per cluster as a superuser: psql "<superuser URL>/%s" -v owner=%s -f deploy/roles.sql',
        array_to_string(v_missing, ', '), current_user, current_database(), current_user);
  end if;

  -- The auth migration grants the API roles to `authenticator`, which needs ADMIN OPTION on
  -- them (or, before Postgres 16, CREATEROLE); deploy/roles.sql grants it to the owner.
  select array_agg(r order by o) into v_cannot_grant
    from unnest(array['anon', 'authenticated', 'service_role']) with ordinality as t(r, o)
   where not pg_catalog.pg_has_role(current_user, r, 'MEMBER WITH ADMIN OPTION')
     and not ((select rolcreaterole from pg_catalog.pg_roles where rolname = current_user)
              and current_setting('server_version_num')::int < 160000);
  if v_cannot_grant is not null then
    raise exception using
      errcode = 'insufficient_privilege',
      message = format(
        'role %s may not grant %s (it needs ADMIN OPTION on them). '
        'Run deploy/roles.sql once per cluster as a superuser: psql "<superuser URL>/%s" -v owner=%s -f deploy/roles.sql',
        current_user, array_to_string(v_cannot_grant, ', '), current_database(), current_user);
  end if;
end
$$;
