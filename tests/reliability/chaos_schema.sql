-- A tiny generic schema for the fault tests: a slow function (pool exhaustion, disconnects, SIGTERM)
-- and a write target. Nothing from the application.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'chaos_auth') then
    create role chaos_auth login noinherit password 'chaos_auth';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'chaos_anon') then
    create role chaos_anon nologin;
  end if;
end $$;
grant chaos_anon to chaos_auth;

create schema chaos;
grant usage on schema chaos to chaos_anon;

create function chaos.nap(seconds float8) returns int language sql volatile as
  $$ select 1 from pg_sleep(least(seconds, 30)) $$;
grant execute on function chaos.nap(float8) to chaos_anon;

create table chaos.notes (id bigint generated always as identity primary key, body text not null);
grant select, insert on chaos.notes to chaos_anon;
