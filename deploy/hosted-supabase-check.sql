-- Smoke check of Werkfunk's schema on a (hosted) Supabase database, run as its `postgres`
-- role after the migrations of deploy/hosted-supabase.txt. Everything happens in one
-- transaction that is rolled back: nothing stays behind.
--
--     psql "<the project's connection string>" -v ON_ERROR_STOP=1 -f deploy/hosted-supabase-check.sql
--
-- Three users in `auth.users` (the sign-up trigger gives them profiles); Alice starts a direct
-- conversation with Bob and writes to it as the API does — `set role authenticated` with
-- `request.jwt.claims` — and row-level security lets Bob see the conversation and the
-- message, and a stranger neither. Ends with the notice "hosted-supabase check passed", or
-- raises naming what failed.

begin;

do $$
declare
  v_alice uuid := gen_random_uuid();
  v_bob uuid := gen_random_uuid();
  v_stranger uuid := gen_random_uuid();
  v_conversation uuid;
  v_seen integer;
begin
  insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                          raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
  select '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated',
         u.id::text || '@werkfunk.test', '', now(),
         '{"provider":"email","providers":["email"]}', jsonb_build_object('full_name', u.name, 'role', u.role),
         now(), now()
    from (values (v_alice, 'Alice Check', 'tradesperson'),
                 (v_bob, 'Bob Check', 'customer'),
                 (v_stranger, 'Stranger Check', 'customer')) as u(id, name, role);
  if (select count(*) from public.profiles where id in (v_alice, v_bob, v_stranger)) <> 3 then
    raise exception 'hosted-supabase check: the sign-up trigger made no profiles';
  end if;

  -- Alice, as the API runs her requests.
  perform set_config('request.jwt.claims', jsonb_build_object('sub', v_alice, 'role', 'authenticated')::text, true);
  set local role authenticated;
  v_conversation := public.create_conversation('direct', null, array[v_bob]);
  insert into public.messages (conversation_id, sender_id, content) values (v_conversation, v_alice, 'Hallo Bob');
  reset role;

  -- Bob, a member, sees both.
  perform set_config('request.jwt.claims', jsonb_build_object('sub', v_bob, 'role', 'authenticated')::text, true);
  set local role authenticated;
  select (select count(*) from public.conversations where id = v_conversation)
       + (select count(*) from public.messages where conversation_id = v_conversation) into v_seen;
  reset role;
  if v_seen <> 2 then
    raise exception 'hosted-supabase check: the member sees % of the conversation and its message (expected 2)', v_seen;
  end if;

  -- A stranger sees neither.
  perform set_config('request.jwt.claims', jsonb_build_object('sub', v_stranger, 'role', 'authenticated')::text, true);
  set local role authenticated;
  select (select count(*) from public.conversations where id = v_conversation)
       + (select count(*) from public.messages where conversation_id = v_conversation) into v_seen;
  reset role;
  if v_seen <> 0 then
    raise exception 'hosted-supabase check: a stranger sees % rows of a conversation that is not theirs', v_seen;
  end if;

  -- And anon nothing at all.
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
  set local role anon;
  begin
    select count(*) into v_seen from public.messages;
  exception when insufficient_privilege then
    v_seen := 0;
  end;
  reset role;
  if v_seen <> 0 then
    raise exception 'hosted-supabase check: anon reads % messages', v_seen;
  end if;

  raise notice 'hosted-supabase check passed';
end
$$;

rollback;
