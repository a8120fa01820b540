-- Login throttle without a lock across bcrypt (follows 020_account_abuse.sql).
--
-- 020 counted each attempt before checking the password, so the row lock of the account's counter was held
-- during the bcrypt comparison: concurrent logins of one account, even successful ones, ran one at a time
-- (the login benchmark logs one account in from many clients). Now the verdict is decided after the hash,
-- under the counter's row lock, and only when the account has a counter row:
--   * a known-over-limit account is refused at once (429, no hash), as before;
--   * a wrong password increments the counter (INSERT ... ON CONFLICT); if that makes it exceed the limit,
--     the answer is 429 instead of 403 (and the increment rolls back with the raised error);
--   * a right password locks the counter row if there is one (FOR UPDATE) and is refused 429 if the
--     limit was reached meanwhile, else deletes it (reset); with no row it takes no lock at all.
-- So no more than `failures` attempts per window get a verdict (403 or a token) however many run at once;
-- parallel attempts past the limit still cost their hash, but the per-client limits bound those.

create or replace function internal.login_throttled(wait_seconds integer) returns void
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

create or replace function api.login(email text, password text) returns json
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
