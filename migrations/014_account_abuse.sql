-- Accounts under attack (issue 10, items 7 and 11): failed logins are limited per account, and signup no
-- longer tells whether an email has an account.

-- A keyed hash (HMAC-SHA256) that turns an identifier (a normalised email, a visitor) into a stable
-- pseudonym: tables that only need to recognise a value again store this, never the value itself.
-- The key is a random secret made here; if it goes missing (a restore that re-installs only the
-- environment's secrets), the first caller makes a new one: pseudonyms then change, which only resets
-- counters and windows.
insert into internal.secrets (name, value)
values ('pseudonym_key', encode(gen_random_bytes(32), 'hex'))
on conflict (name) do nothing;

create function internal.pseudonym_key() returns text
language plpgsql volatile
set search_path = pg_catalog, internal, public
as $$
declare
    key text := (select value from internal.secrets where name = 'pseudonym_key');
begin
    if key is null then
        insert into internal.secrets (name, value) values ('pseudonym_key', encode(gen_random_bytes(32), 'hex'))
        on conflict (name) do nothing;
        key := (select value from internal.secrets where name = 'pseudonym_key');
    end if;
    return key;
end
$$;
comment on function internal.pseudonym_key() is
    'The HMAC key of internal.pseudonym (secret pseudonym_key), made on first use when missing.';
revoke execute on function internal.pseudonym_key() from public;

create function internal.pseudonym(value text) returns bytea
language sql volatile
set search_path = pg_catalog, internal, public
as $$ select hmac(convert_to(coalesce(value, ''), 'utf8'), convert_to(internal.pseudonym_key(), 'utf8'), 'sha256') $$;
comment on function internal.pseudonym(text) is
    'HMAC-SHA256 of a value under a server secret: recognisable again, not reversible without the key.';
revoke execute on function internal.pseudonym(text) from public;

-- Failed logins per account. One row per normalised email (also emails without an account, so that
-- throttling answers alike for every email), keyed by its pseudonym: no email is stored.
create table internal.login_failures (
    account_key  bytea primary key,
    failures     integer not null check (failures >= 0),
    window_start timestamptz not null
);
comment on table internal.login_failures is
    'Failed login attempts per account (pseudonym of lower(trim(email))) in the current window; reset by a successful login.';
comment on column internal.login_failures.account_key is 'internal.pseudonym(''login:'' || lower(trim(email))).';
comment on column internal.login_failures.window_start is 'Time of the first failure of the window; the window lasts window_seconds.';
alter table internal.login_failures enable row level security;  -- no policy and no grant: definer functions only

insert into internal.settings (name, value)
values ('login_throttle', '{"failures": 10, "window_seconds": 900}')
on conflict (name) do nothing;

-- Operators change the limit with `select internal.set_login_throttle(10, 900)`; null failures turns it off.
create function internal.set_login_throttle(failures integer, window_seconds integer) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    if failures is not null and (failures < 1 or window_seconds is null or window_seconds < 1) then
        raise exception using errcode = '22023',
            message = 'the login throttle needs failures >= 1 and window_seconds >= 1 (or failures null for off)';
    end if;
    update internal.settings
    set value = jsonb_build_object('failures', failures, 'window_seconds', window_seconds)
    where name = 'login_throttle';
end
$$;
comment on function internal.set_login_throttle(integer, integer) is
    'Allow this many failed logins per account per window (seconds); null failures: no per-account limit.';
revoke execute on function internal.set_login_throttle(integer, integer) from public;

-- The body of a failed login, byte for byte what the gateway renders for an error (compact, keys sorted).
create function internal.login_refused() returns json
language sql immutable
as $$ select '{"code":"28P01","details":null,"hint":null,"message":"invalid email or password"}'::json $$;
comment on function internal.login_refused() is 'PostgREST error body of a failed login (28P01).';
revoke execute on function internal.login_refused() from public;

-- api.login now returns json: the token as a JSON string, as before on the wire, or, for a failed attempt,
-- the 28P01 error body with response.status 403. Returning instead of raising keeps the transaction, so
-- the failed attempt stays counted. No lock is held across bcrypt (concurrent logins of one account must
-- not run one at a time): the verdict is decided after the hash, under the counter's row lock, and only
-- when the account has a counter row:
--   * a known-over-limit account is refused at once (429 with Retry-After, no hash);
--   * a wrong password increments the counter (INSERT ... ON CONFLICT); if that makes it exceed the limit,
--     the answer is 429 instead of 403 (and the increment rolls back with the raised error);
--   * a right password locks the counter row if there is one (FOR UPDATE) and is refused 429 if the
--     limit was reached meanwhile, else deletes it (reset); with no row it takes no lock at all.
-- So no more than `failures` attempts per window get a verdict (403 or a token) however many run at once;
-- parallel attempts past the limit still cost their hash, but the per-client limits bound those.
drop function api.login(text, text);

create function internal.login_throttled(wait_seconds integer) returns void
language plpgsql
set search_path = pg_catalog
as $$
begin
    raise sqlstate 'PGRST' using
        message = json_build_object(
            'code', 'RS429', 'details', null,
            'hint', format('wait %s seconds, or reset the password', wait_seconds),
            'message', 'too many failed logins for this account')::text,
        detail = json_build_object(
            'status', 429, 'headers', json_build_object('Retry-After', wait_seconds::text))::text;
end
$$;
comment on function internal.login_throttled(integer) is
    'Raise the 429 answer of a throttled login (RAISE SQLSTATE PGRST with Retry-After).';
revoke execute on function internal.login_throttled(integer) from public;

create function api.login(email text, password text) returns json
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    account internal.users;
    issued bigint := floor(extract(epoch from now()))::bigint;
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
    elsif account.password = crypt(login.password, account.password) then
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
        return to_json(auth.jwt_sign(jsonb_build_object(
            'role', case account.role when 'admin' then 'app_admin' else 'app_user' end,
            'sub', account.id,
            'user_id', account.id,
            'email', account.email,
            'iat', issued,
            'exp', issued + 60 * 60 * 24
        ), internal.secret('jwt_secret')));
    end if;
    -- unknown email and wrong password alike
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
    perform set_config('response.status', '403', true);
    perform set_config('response.headers', '[{"Proxy-Status": "PostgREST; error=28P01"}]', true);
    return internal.login_refused();
end
$$;
comment on function api.login(text, text) is
    'Exchange email and password for a JWT valid 24 hours (a JSON string). A wrong email or password is 403 28P01; after 10 failures for one email in 15 minutes, 429 with Retry-After until the window ends.';
revoke execute on function api.login(text, text) from public;
grant execute on function api.login(text, text) to anonymous, app_user, app_admin;

-- Retention of the counters: a row whose window ended is worth nothing (the next failure restarts it).
create function internal.purge_login_failures(as_of timestamptz) returns bigint
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    seconds integer := coalesce(
        (select (value ->> 'window_seconds')::integer from internal.settings where name = 'login_throttle'), 900);
    removed bigint;
begin
    delete from internal.login_failures where window_start <= as_of - make_interval(secs => seconds);
    get diagnostics removed = row_count;
    return removed;
end
$$;
comment on function internal.purge_login_failures(timestamptz) is
    'Delete per-account login failure counters whose window ended before as_of; returns how many.';
revoke execute on function internal.purge_login_failures(timestamptz) from public;

select cron.schedule('purge-login-failures', '*/15 * * * *', 'select internal.purge_login_failures(now())');

-- Signup answers alike for new and existing emails (as Supabase Auth does): 204 No Content either way,
-- after one bcrypt hash either way. An existing account is left as it is; no second one is made
-- (ON CONFLICT on the case-insensitive unique index). Bad input is still refused (400) before anything
-- depends on whether the email exists.
drop function api.signup(text, text);

create function api.signup(email text, password text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
#variable_conflict use_column
declare
    hashed text;
begin
    perform internal.check_email(signup.email);
    perform internal.check_password(signup.password);
    hashed := crypt(signup.password, gen_salt('bf', 10));
    insert into internal.users (email, password, role)
    values (lower(trim(signup.email)), hashed, 'user')
    on conflict ((lower(email))) do nothing;
end
$$;
comment on function api.signup(text, text) is
    'Create an account with role user (204, no body). An email that already has an account gets the same answer and the account is unchanged. Passwords need 10+ characters, not just letters or digits.';
revoke execute on function api.signup(text, text) from public;
grant execute on function api.signup(text, text) to anonymous, app_user, app_admin;
