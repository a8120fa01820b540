-- Sessions (issue 11): login opens a session and returns a short-lived access token plus a rotating,
-- single-use refresh token; every request's token is checked against its session by the pre-request
-- function auth.check_session (PGRST_DB_PRE_REQUEST), so revocation takes effect on the next request.

-- Settings of the session model; `referral-service migrate` writes them from the environment
-- (REFERRAL_ACCESS_TOKEN_TTL, REFERRAL_SESSION_INACTIVITY, REFERRAL_LEGACY_TOKENS, PGRST_JWT_AUD).
insert into internal.settings (name, value)
values ('auth', '{"access_token_seconds": 3600, "session_inactivity_seconds": 2592000,
                  "legacy_tokens": false, "audience": null}')
on conflict (name) do nothing;

create function internal.auth_setting(key text) returns jsonb
language sql stable
set search_path = pg_catalog, internal
as $$ select value -> key from internal.settings where name = 'auth' $$;
comment on function internal.auth_setting(text) is 'One key of the auth settings (internal.settings row auth).';
revoke execute on function internal.auth_setting(text) from public;

create function internal.set_auth_settings(changes jsonb) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    merged jsonb := (select value from internal.settings where name = 'auth') || coalesce(changes, '{}');
begin
    if exists (select 1 from jsonb_object_keys(changes) k
               where k not in ('access_token_seconds', 'session_inactivity_seconds', 'legacy_tokens', 'audience')) then
        raise exception using errcode = '22023', message = 'unknown auth setting',
            hint = 'known: access_token_seconds, session_inactivity_seconds, legacy_tokens, audience';
    end if;
    if jsonb_typeof(merged -> 'access_token_seconds') <> 'number'
       or (merged ->> 'access_token_seconds')::numeric not between 60 and 86400
       or jsonb_typeof(merged -> 'session_inactivity_seconds') <> 'number'
       or (merged ->> 'session_inactivity_seconds')::numeric not between 300 and 31536000
       or jsonb_typeof(merged -> 'legacy_tokens') <> 'boolean'
       or jsonb_typeof(merged -> 'audience') not in ('null', 'string') then
        raise exception using errcode = '22023',
            message = 'auth settings out of range: access tokens live 60..86400 s, sessions 300..31536000 s';
    end if;
    update internal.settings set value = merged where name = 'auth';
end
$$;
comment on function internal.set_auth_settings(jsonb) is
    'Change auth settings: access_token_seconds (60..86400), session_inactivity_seconds, legacy_tokens (24 h tokens as a bare string), audience (aud claim).';
revoke execute on function internal.set_auth_settings(jsonb) from public;

alter table internal.users
    add column disabled_at timestamptz,
    add column last_sign_in_at timestamptz,
    add column tokens_valid_after timestamptz not null default '-infinity';
comment on column internal.users.disabled_at is 'Set when an operator or admin disabled the account: no sign-in, no request.';
-- a sign-in (last_sign_in_at) is not a change of the account: updated_at follows these columns only
drop trigger users_touch on internal.users;
create trigger users_touch before update of email, password, role, disabled_at on internal.users
    for each row execute function internal.touch_updated_at();

comment on column internal.users.tokens_valid_after is
    'Tokens without a session (issued before sessions existed, or by an operator) issued before this are refused.';

create function internal.api_role(user_role text) returns text
language sql immutable
as $$ select case user_role when 'admin' then 'app_admin' else 'app_user' end $$;
comment on function internal.api_role(text) is 'The database role of an account role (user → app_user, admin → app_admin).';
revoke execute on function internal.api_role(text) from public;

create table internal.sessions (
    id             uuid primary key default gen_random_uuid(),
    user_id        uuid not null references internal.users (id) on delete cascade,
    role           text not null,
    created_at     timestamptz not null default now(),
    refreshed_at   timestamptz not null default now(),
    expires_at     timestamptz not null,
    revoked_at     timestamptz,
    revoked_reason text,
    user_agent     text check (length(user_agent) <= 200)
);
create index sessions_user_id_idx on internal.sessions (user_id);
comment on table internal.sessions is
    'One row per sign-in. Tokens carry its id (sid); auth.check_session refuses a token whose session is revoked, expired or of another role.';
comment on column internal.sessions.role is 'The database role its tokens must carry; follows the account''s role.';
comment on column internal.sessions.expires_at is 'End of the session unless refreshed before (refreshed_at + inactivity).';
alter table internal.sessions enable row level security;
grant select (id, user_id, role, created_at, refreshed_at, expires_at, revoked_at, revoked_reason, user_agent)
    on internal.sessions to app_user, app_admin;
create policy sessions_own on internal.sessions for select to app_user using (user_id = (select auth.uid()));
create policy sessions_admin on internal.sessions for select to app_admin using (true);

create view api.sessions with (security_invoker = true) as
    select id, user_id, role, created_at, refreshed_at, expires_at, revoked_at, revoked_reason, user_agent,
           revoked_at is null and expires_at > now() as active
    from internal.sessions;
comment on view api.sessions is 'Sign-in sessions: a user sees their own, an admin sees all. End them with logout.';
grant select on api.sessions to app_user, app_admin;

-- Refresh tokens: only their SHA-256 is stored; no API role has any privilege on this table.
create table internal.refresh_tokens (
    token_hash bytea primary key,
    session_id uuid not null references internal.sessions (id) on delete cascade,
    issued_at  timestamptz not null default now(),
    used_at    timestamptz
);
create index refresh_tokens_session_idx on internal.refresh_tokens (session_id);
comment on table internal.refresh_tokens is
    'SHA-256 of each refresh token; single use: presenting a used one revokes its session (reuse detection).';
alter table internal.refresh_tokens enable row level security;  -- no policy, no grant: definer functions only

-- Who did what to which account. Admins read it through api.audit_log.
create table internal.audit_log (
    id       bigint generated always as identity primary key,
    at       timestamptz not null default now(),
    actor    text not null,
    action   text not null check (action in (
        'sign_in', 'sign_in_failed', 'refresh_token_reuse', 'sign_out', 'password_changed',
        'password_reset_requested', 'password_reset', 'role_changed', 'disabled', 'enabled', 'deleted',
        'sessions_revoked')),
    user_id  uuid,
    email    text,
    details  jsonb
);
create index audit_log_at_idx on internal.audit_log (at);
create index audit_log_user_idx on internal.audit_log (user_id, at);
comment on table internal.audit_log is 'Account events: sign-ins, failures, refresh reuse, role changes, disable, delete, resets.';
comment on column internal.audit_log.actor is 'The admin''s email, "self" for the account owner, or "cli:<database user>" for operators.';
alter table internal.audit_log enable row level security;
grant select on internal.audit_log to app_admin;
create policy audit_admin on internal.audit_log for select to app_admin using (true);

create view api.audit_log with (security_invoker = true) as
    select id, at, actor, action, user_id, email, details from internal.audit_log;
comment on view api.audit_log is 'Admins only: who did what to which account and when.';
grant select on api.audit_log to app_admin;

-- Who is acting: an admin (by email), the account owner, or an operator at the database.
create function internal.actor() returns text
language sql stable
set search_path = pg_catalog, internal
as $$
    select case
        when auth.role() = 'app_admin' then coalesce(auth.jwt() ->> 'email', 'admin')
        when auth.role() = 'app_user' then 'self'
        when auth.jwt() ->> 'role' is null then 'cli:' || session_user
        else 'self' end
$$;
revoke execute on function internal.actor() from public;

create function internal.audit(action text, user_id uuid, email text, details jsonb default null) returns void
language sql
set search_path = pg_catalog, internal
as $$ insert into internal.audit_log (actor, action, user_id, email, details)
      values (internal.actor(), action, user_id, email, details) $$;
comment on function internal.audit(text, uuid, text, jsonb) is 'Record an account event in internal.audit_log.';
revoke execute on function internal.audit(text, uuid, text, jsonb) from public;

-- The answers of auth functions that refuse without raising (so what they record commits):
-- PostgREST's error body with the status set through response.status.
create function internal.auth_refusal(status integer, code text, message text, hint text default null)
returns json
language plpgsql
set search_path = pg_catalog
as $$
begin
    perform set_config('response.status', status::text, true);
    -- byte for byte what the gateway renders for an error (compact, keys sorted)
    return format('{"code":%s,"details":null,"hint":%s,"message":%s}',
                  to_json(code), coalesce(to_json(hint)::text, 'null'), to_json(message))::json;
end
$$;
revoke execute on function internal.auth_refusal(integer, text, text, text) from public;

-- Ends sessions; returns how many were active.
create function internal.revoke_sessions(target uuid, reason text, keep uuid default null) returns integer
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    ended integer;
begin
    update internal.sessions set revoked_at = now(), revoked_reason = reason
    where user_id = target and revoked_at is null and id is distinct from keep;
    get diagnostics ended = row_count;
    return ended;
end
$$;
revoke execute on function internal.revoke_sessions(uuid, text, uuid) from public;

-- Access token of a session (one place that signs them).
create function internal.sign_access_token(claims jsonb) returns text
language sql stable
set search_path = pg_catalog, internal
as $$ select auth.jwt_sign(claims, internal.secret('jwt_secret')) $$;
comment on function internal.sign_access_token(jsonb) is 'Sign the claims of an access token with the current JWT key.';
revoke execute on function internal.sign_access_token(jsonb) from public;

-- A new refresh token for a session and a fresh access token: the Supabase Auth response shape
-- (or, with legacy_tokens, the seed's bare 24-hour token string).
create function internal.issue_tokens(session_id uuid, account internal.users) returns json
language plpgsql
set search_path = pg_catalog, internal, public
as $$
declare
    legacy boolean := coalesce((internal.auth_setting('legacy_tokens'))::boolean, false);
    lifetime integer := case when legacy then 86400
                             else coalesce((internal.auth_setting('access_token_seconds'))::integer, 3600) end;
    audience jsonb := internal.auth_setting('audience');
    issued bigint := floor(extract(epoch from now()))::bigint;
    refresh text := auth.base64url_encode(gen_random_bytes(32));
    access text;
begin
    access := internal.sign_access_token(jsonb_strip_nulls(jsonb_build_object(
        'role', internal.api_role(account.role),
        'sub', account.id,
        'user_id', account.id,  -- the seed's claim, kept for existing clients
        'email', account.email,
        'sid', session_id,
        'iat', issued,
        'exp', issued + lifetime,
        'aud', case when jsonb_typeof(audience) = 'string' then audience end)));
    if legacy then
        return to_json(access);
    end if;
    insert into internal.refresh_tokens (token_hash, session_id) values (sha256(convert_to(refresh, 'utf8')), session_id);
    return json_build_object(
        'access_token', access,
        'token_type', 'bearer',
        'expires_in', lifetime,
        'expires_at', issued + lifetime,
        'refresh_token', refresh,
        'user', json_build_object('id', account.id, 'email', account.email, 'role', account.role,
                                  'created_at', account.created_at, 'last_sign_in_at', account.last_sign_in_at));
end
$$;
revoke execute on function internal.issue_tokens(uuid, internal.users) from public;

create function internal.start_session(account internal.users) returns json
language plpgsql
set search_path = pg_catalog, internal, public
as $$
declare
    agent text := left(current_setting('request.headers', true)::json ->> 'user-agent', 200);
    inactivity integer := coalesce((internal.auth_setting('session_inactivity_seconds'))::integer, 2592000);
    new_id uuid;
begin
    -- no waiting on a concurrent sign-in of the same account (it sets the same time)
    update internal.users set last_sign_in_at = now()
    where id = (select u.id from internal.users u where u.id = account.id for no key update skip locked);
    account.last_sign_in_at := now();
    insert into internal.sessions (user_id, role, expires_at, user_agent)
    values (account.id, internal.api_role(account.role), now() + make_interval(secs => inactivity), agent)
    returning id into new_id;
    perform internal.audit('sign_in', account.id, account.email, jsonb_build_object('session', new_id));
    return internal.issue_tokens(new_id, account);
end
$$;
revoke execute on function internal.start_session(internal.users) from public;

-- Login keeps issue 10's per-account throttle; success opens a session; a disabled account is refused
-- like a wrong password (its owner learns nothing an attacker would not).
drop function api.login(text, text);

create function api.login(email text, password text) returns json
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    account internal.users;
    throttle jsonb := (select value from internal.settings where name = 'login_throttle');
    max_failures integer := (throttle ->> 'failures')::integer;
    window_length interval := make_interval(secs => coalesce((throttle ->> 'window_seconds')::integer, 900));
    key bytea := internal.pseudonym('login:' || lower(trim(coalesce(login.email, ''))));
    attempts integer;
    started timestamptz;
begin
    if max_failures is not null then
        select f.failures, f.window_start into attempts, started
        from internal.login_failures f where f.account_key = key;
        if attempts >= max_failures and started > now() - window_length then
            perform internal.login_throttled(
                greatest(1, ceil(extract(epoch from started + window_length - now()))::integer));
        end if;
    end if;
    select * into account from internal.users u where lower(u.email) = lower(trim(login.email));
    if account.id is null then
        perform crypt(login.password, internal.dummy_hash());
    elsif account.password = crypt(login.password, account.password) and account.disabled_at is null then
        if max_failures is not null then
            select f.failures, f.window_start into attempts, started
            from internal.login_failures f where f.account_key = key for update;
            if found then
                if attempts >= max_failures and started > now() - window_length then
                    perform internal.login_throttled(
                        greatest(1, ceil(extract(epoch from started + window_length - now()))::integer));
                end if;
                delete from internal.login_failures where account_key = key;  -- success resets the count
            end if;
        end if;
        return internal.start_session(account);
    end if;
    if account.id is not null then
        perform internal.audit('sign_in_failed', account.id, account.email,
                               case when account.disabled_at is not null then '{"disabled": true}'::jsonb end);
    end if;
    if max_failures is not null then
        insert into internal.login_failures as f (account_key, failures, window_start)
        values (key, 1, now())
        on conflict (account_key) do update
            set failures = case when f.window_start <= now() - window_length then 1 else f.failures + 1 end,
                window_start = case when f.window_start <= now() - window_length then now() else f.window_start end
        returning f.failures, f.window_start into attempts, started;
        if attempts > max_failures then
            perform internal.login_throttled(
                greatest(1, ceil(extract(epoch from started + window_length - now()))::integer));
        end if;
    end if;
    -- the counted attempt commits with this answer (a raised error would roll it back)
    perform set_config('response.headers', '[{"Proxy-Status": "PostgREST; error=28P01"}]', true);
    return internal.auth_refusal(403, '28P01', 'invalid email or password');
end
$$;
comment on function api.login(text, text) is
    'Sign in: {access_token, token_type, expires_in, expires_at, refresh_token, user}. The access token lives 1 hour (auth setting); renew it with refresh. A wrong email or password is 403 28P01; after 10 failures for one email in 15 minutes, 429 with Retry-After.';
revoke execute on function api.login(text, text) from public;
grant execute on function api.login(text, text) to anonymous, app_user, app_admin;

create function api.refresh(refresh_token text) returns json
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    presented bytea := sha256(convert_to(coalesce(refresh.refresh_token, ''), 'utf8'));
    token internal.refresh_tokens;
    session internal.sessions;
    account internal.users;
    inactivity integer := coalesce((internal.auth_setting('session_inactivity_seconds'))::integer, 2592000);
begin
    select * into token from internal.refresh_tokens t where t.token_hash = presented for update;
    if found then
        select * into session from internal.sessions s where s.id = token.session_id for update;
        select * into account from internal.users u where u.id = session.user_id;
    end if;
    if token.used_at is not null and session.revoked_at is null then
        -- a rotated token came back: someone holds a copy; end the session for both holders
        update internal.sessions set revoked_at = now(), revoked_reason = 'refresh_token_reuse' where id = session.id;
        perform internal.audit('refresh_token_reuse', account.id, account.email,
                               jsonb_build_object('session', session.id));
    end if;
    if token.token_hash is null or token.used_at is not null or session.revoked_at is not null
       or session.expires_at <= now() or account.disabled_at is not null then
        return internal.auth_refusal(401, 'RS401', 'invalid refresh token', 'sign in again');
    end if;
    update internal.refresh_tokens set used_at = now() where token_hash = presented;
    update internal.sessions
    set refreshed_at = now(), expires_at = now() + make_interval(secs => inactivity), role = internal.api_role(account.role)
    where id = session.id;
    return internal.issue_tokens(session.id, account);
end
$$;
comment on function api.refresh(text) is
    'Exchange a refresh token for a new access token and a new refresh token (same shape as login). Each refresh token works once: presenting a used one ends its session. 401 RS401 when invalid, used, expired or revoked.';
revoke execute on function api.refresh(text) from public;
grant execute on function api.refresh(text) to anonymous, app_user, app_admin;

create function api.logout(scope text default 'local') returns void
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    me uuid := auth.uid();
    current_session uuid := nullif(auth.jwt() ->> 'sid', '')::uuid;
begin
    if me is null then
        raise exception using errcode = '42501', message = 'sign in first: logout ends the session of a signed-in user';
    end if;
    if scope not in ('local', 'global', 'others') then
        raise exception using errcode = '22023', message = 'scope must be local, global or others';
    end if;
    if scope = 'local' and current_session is not null then
        update internal.sessions set revoked_at = now(), revoked_reason = 'sign_out'
        where id = current_session and revoked_at is null;
    elsif scope = 'others' then
        perform internal.revoke_sessions(me, 'sign_out', current_session);
    else  -- global, or a token without a session: everything of this account
        perform internal.revoke_sessions(me, 'sign_out');
        update internal.users set tokens_valid_after = now() where id = me;
    end if;
    perform internal.audit('sign_out', me, auth.jwt() ->> 'email', jsonb_build_object('scope', scope));
end
$$;
comment on function api.logout(text) is
    'End the current session (scope local, the default), all of this account''s sessions (global) or all but the current one (others). 204.';
revoke execute on function api.logout(text) from public;
grant execute on function api.logout(text) to app_user, app_admin;

-- The pre-request function (PGRST_DB_PRE_REQUEST): one primary-key lookup per signed-in request.
create function internal.session_refused(reason text) returns void
language plpgsql
set search_path = pg_catalog
as $$
begin
    raise sqlstate 'PGRST' using
        message = json_build_object('code', 'PGRST303', 'details', null, 'hint', null, 'message', reason)::text,
        detail = json_build_object('status', 401, 'headers', json_build_object(
            'WWW-Authenticate', format('Bearer error="invalid_token", error_description="%s"', reason)))::text;
end
$$;
revoke execute on function internal.session_refused(text) from public;

create function auth.check_session() returns void
language plpgsql stable security definer
set search_path = pg_catalog, internal
as $$
declare
    claims jsonb := auth.jwt();
    claimed_role text := claims ->> 'role';
    sid uuid;
    session_role text;
    ends timestamptz;
    revoked timestamptz;
    user_role text;
    disabled timestamptz;
    valid_after timestamptz;
begin
    if claimed_role is null or claimed_role not in ('app_user', 'app_admin') then
        return;  -- anonymous, or a role no account has (e.g. an operator's service token)
    end if;
    if claims ? 'sid' then
        begin
            sid := (claims ->> 'sid')::uuid;
        exception when invalid_text_representation then
            perform internal.session_refused('JWT session is not valid');
        end;
        select s.role, s.expires_at, s.revoked_at into session_role, ends, revoked
        from internal.sessions s where s.id = sid;
        if not found or revoked is not null then
            perform internal.session_refused('JWT session has ended');
        elsif ends <= now() then
            perform internal.session_refused('JWT session has expired');
        elsif session_role <> claimed_role then
            perform internal.session_refused('JWT role no longer matches the account');
        end if;
    elsif claims ? 'sub' or claims ? 'user_id' then
        -- a token without a session (issued before sessions existed): check the account itself
        select internal.api_role(u.role), u.disabled_at, u.tokens_valid_after into user_role, disabled, valid_after
        from internal.users u where u.id = auth.uid();
        if not found or disabled is not null then
            perform internal.session_refused('JWT account no longer exists or is disabled');
        elsif user_role <> claimed_role then
            perform internal.session_refused('JWT role no longer matches the account');
        elsif to_timestamp(coalesce((claims ->> 'iat')::numeric, 0)) < valid_after then
            perform internal.session_refused('JWT has been revoked');
        end if;
    end if;
end
$$;
comment on function auth.check_session() is
    'Pre-request check (PGRST_DB_PRE_REQUEST): 401 for a token whose session ended or expired, whose account is disabled or deleted, or whose role is no longer the account''s.';
revoke execute on function auth.check_session() from public;
grant execute on function auth.check_session() to anonymous, app_user, app_admin;

-- Account changes reach the sessions: a role change moves them to the new role (old tokens fail on
-- their next request, refresh gives the new role); disabling ends them. Audited from every path
-- (API, admin RPCs, CLI). The last admin can be neither demoted, disabled nor deleted.
create function internal.guard_last_admin() returns trigger
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    if old.role <> 'admin' or old.disabled_at is not null then
        return case when tg_op = 'DELETE' then old else new end;
    end if;
    if tg_op = 'DELETE' or (tg_op = 'UPDATE' and (new.role <> 'admin' or new.disabled_at is not null)) then
        perform pg_advisory_xact_lock(hashtext('internal.users:admins'));
        if not exists (select 1 from internal.users
                       where role = 'admin' and disabled_at is null and id <> old.id) then
            raise exception using errcode = 'P0001', message = 'cannot remove the last admin',
                hint = 'make another account admin first';
        end if;
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end
$$;
revoke execute on function internal.guard_last_admin() from public;
create trigger users_guard_last_admin before update of role, disabled_at or delete on internal.users
    for each row execute function internal.guard_last_admin();

create function internal.account_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    if tg_op = 'DELETE' then
        perform internal.audit('deleted', old.id, old.email);
        return old;
    end if;
    if new.role is distinct from old.role then
        update internal.sessions set role = internal.api_role(new.role) where user_id = new.id and revoked_at is null;
        perform internal.audit('role_changed', new.id, new.email, jsonb_build_object('from', old.role, 'to', new.role));
    end if;
    if new.disabled_at is not null and old.disabled_at is null then
        perform internal.revoke_sessions(new.id, 'disabled');
        perform internal.audit('disabled', new.id, new.email);
    elsif new.disabled_at is null and old.disabled_at is not null then
        perform internal.audit('enabled', new.id, new.email);
    end if;
    return new;
end
$$;
revoke execute on function internal.account_changed() from public;
create trigger users_account_changed after update of role, disabled_at or delete on internal.users
    for each row execute function internal.account_changed();

-- Retention: ended sessions (with their tokens) a week after they ended; used refresh tokens once
-- the inactivity window is over (a reuse that late just fails); the audit log after a year.
create function internal.purge_sessions(as_of timestamptz) returns bigint
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    inactivity interval := make_interval(secs => coalesce((internal.auth_setting('session_inactivity_seconds'))::integer, 2592000));
    removed bigint;
begin
    delete from internal.refresh_tokens where used_at < as_of - inactivity;
    delete from internal.sessions where coalesce(revoked_at, expires_at) < as_of - interval '7 days';
    get diagnostics removed = row_count;
    delete from internal.audit_log where at < as_of - interval '365 days';
    return removed;
end
$$;
comment on function internal.purge_sessions(timestamptz) is
    'Delete sessions ended over 7 days before as_of (and their refresh tokens), old used refresh tokens and audit entries over a year old.';
revoke execute on function internal.purge_sessions(timestamptz) from public;

select cron.schedule('purge-sessions', '17 * * * *', 'select internal.purge_sessions(now())');
