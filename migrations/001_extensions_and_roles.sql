-- Extensions the service relies on, and the PostgREST-style roles.
-- pgjwt is not packaged for Debian's PostgreSQL 15: JWTs are signed in SQL on pgcrypto (002_auth.sql).
create extension if not exists pgcrypto;
create extension if not exists "uuid-ossp";
create extension if not exists pg_stat_statements;
create extension if not exists pg_cron;

-- Roles are cluster-wide, so create them only where missing (a second database on the same server reuses them).
do $$
begin
    -- the gateway logs in as authenticator; it can do nothing itself but switch to an API role (NOINHERIT)
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
    -- requests without a token
    if not exists (select from pg_roles where rolname = 'anonymous') then
        create role anonymous nologin;
    end if;
    -- users.role = 'user' ("user" is a reserved word in SQL, hence app_user)
    if not exists (select from pg_roles where rolname = 'app_user') then
        create role app_user nologin;
    end if;
    -- users.role = 'admin'
    if not exists (select from pg_roles where rolname = 'app_admin') then
        create role app_admin nologin;
    end if;
end
$$;

comment on role authenticator is 'Login role of the gateway; can only switch to the API roles.';
comment on role anonymous is 'Role of requests without a JWT.';
comment on role app_user is 'Role of signed-in users (users.role = user).';
comment on role app_admin is 'Role of administrators (users.role = admin).';

grant anonymous, app_user, app_admin to authenticator;

-- Deny by default: nobody but the owner may create objects in public.
revoke create on schema public from public;

-- The exposed schema: everything in it is reachable over HTTP, subject to grants and RLS.
create schema if not exists api;
comment on schema api is 'Churnistic referral service API';
grant usage on schema api to anonymous, app_user, app_admin;

-- Private schemas: never exposed by the gateway.
create schema if not exists auth;
comment on schema auth is 'Request identity helpers and JWT signing (private).';
-- policies call auth.uid()/auth.role() as the requesting role, so API roles may use (only) those
grant usage on schema auth to anonymous, app_user, app_admin;

create schema if not exists internal;
comment on schema internal is 'Private tables and helpers (users with password hashes, secrets).';
