-- Werkfunk: the one step that needs a superuser. Run it once per Postgres cluster, as a
-- superuser, before the server (connecting as a role that is NOT a superuser) first migrates
-- its database:
--
--     psql "postgres://<superuser>@<host>/<database>" -v owner=<server role> -f deploy/roles.sql
--
-- `owner` is the role the server connects as (the owner of its database). The script creates
-- the API roles if they are missing — `service_role` bypasses row-level security, which only
-- a superuser may grant —, grants them to `authenticator` as the auth migration would, and
-- gives the owner what the migrations and the server need:
-- membership in the API roles (the server switches to them per request) with ADMIN OPTION
-- (the auth migration grants them to `authenticator`). It also sets the API roles'
-- `statement_timeout` (altering another role needs CREATEROLE). Safe to run again.
--
-- On a hosted Supabase project none of this is needed: the roles exist (see the README,
-- "Hosted Supabase").

\set ON_ERROR_STOP on
\if :{?owner}
\else
  do $$ begin raise exception 'deploy/roles.sql needs the owner: psql <superuser URL> -v owner=<the role the server connects as> -f deploy/roles.sql'; end $$;
\endif

-- Two runs at the same moment (test suites sharing a cluster) take turns: role DDL of
-- concurrent sessions would collide on the catalogs. Held until the session ends.
do $$ begin perform pg_catalog.pg_advisory_lock(7352617826); end $$;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator nologin noinherit;
  end if;
-- Another session creating the same role at the same moment: it exists now, which is enough.
exception when duplicate_object or unique_violation then
  null;
end
$$;

-- What the auth migration grants (a no-op there once done here; done once, here, so that
-- databases of one cluster migrating at the same moment do not race on the same grant).
do $$
begin
  if not (pg_catalog.pg_has_role('authenticator', 'anon', 'MEMBER')
          and pg_catalog.pg_has_role('authenticator', 'authenticated', 'MEMBER')
          and pg_catalog.pg_has_role('authenticator', 'service_role', 'MEMBER')) then
    grant anon, authenticated, service_role to authenticator;
  end if;
end
$$;

grant anon, authenticated, service_role to :"owner" with admin option;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
