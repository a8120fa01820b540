-- Passwords (issue 11): a policy with a list of common passwords, change for a signed-in user (ends the
-- other sessions), reset by a single-use emailed token (ends every session).

-- The most common passwords (zxcvbn's frequency list, loaded by `referral-service migrate` from the
-- pinned zxcvbn package: see docs/security.md). Empty until then: the other rules still apply.
create table internal.common_passwords (
    password text primary key
);
comment on table internal.common_passwords is 'Lower-cased common passwords refused by internal.check_password.';
alter table internal.common_passwords enable row level security;  -- no policy, no grant

create or replace function internal.check_password(password text) returns void
language plpgsql stable
set search_path = pg_catalog, internal
as $$
declare
    lowered text := lower(coalesce(password, ''));
    -- "Password2024!" is "password" with decoration: strip leading and trailing non-letters
    core text := regexp_replace(lowered, '^[^[:alpha:]]+|[^[:alpha:]]+$', '', 'g');
begin
    if password is null or length(password) < 10 then
        raise exception using errcode = '22023', message = 'password is too short: use at least 10 characters';
    end if;
    if octet_length(password) > 72 then
        raise exception using errcode = '22023',
            message = 'password is too long: use at most 72 bytes (bcrypt ignores the rest)';
    end if;
    if password ~ '^[[:alpha:]]+$' or password ~ '^[0-9]+$' then
        raise exception using errcode = '22023',
            message = 'password is too weak: mix letters with digits or symbols';
    end if;
    if length(regexp_replace(lowered, '(.)\1+', '\1', 'g')) < 4
       or exists (select 1 from internal.common_passwords c where c.password in (lowered, core)) then
        raise exception using errcode = '22023',
            message = 'password is too common: choose one that is not a well-known password or a variant of one',
            hint = 'a few unrelated words make a strong password';
    end if;
end
$$;
comment on function internal.check_password(text) is
    'Password policy: 10+ characters, at most 72 bytes, not one character class, not a common password or a decorated one.';
revoke execute on function internal.check_password(text) from public;

create function internal.load_common_passwords(passwords text[]) returns integer
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    added integer;
begin
    insert into internal.common_passwords (password)
    select distinct lower(p) from unnest(passwords) p where p <> ''
    on conflict do nothing;
    get diagnostics added = row_count;
    return added;
end
$$;
comment on function internal.load_common_passwords(text[]) is 'Add passwords to the common-password list (lower-cased).';
revoke execute on function internal.load_common_passwords(text[]) from public;

-- Change: the signed-in user proves the current password; every other session ends.
create function api.change_password(current_password text, new_password text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    account internal.users;
begin
    select * into account from internal.users where id = auth.uid();
    if account.id is null then
        raise exception using errcode = '42501', message = 'sign in first to change your password';
    end if;
    if account.password <> crypt(coalesce(current_password, ''), account.password) then
        raise exception using errcode = '28P01', message = 'current password is incorrect';
    end if;
    perform internal.check_password(new_password);
    if new_password = current_password then
        raise exception using errcode = '22023', message = 'new password must differ from the current one';
    end if;
    update internal.users set password = crypt(new_password, gen_salt('bf', 10)), tokens_valid_after = now()
    where id = account.id;
    perform internal.revoke_sessions(account.id, 'password_changed', nullif(auth.jwt() ->> 'sid', '')::uuid);
    perform internal.audit('password_changed', account.id, account.email);
end
$$;
comment on function api.change_password(text, text) is
    'Signed-in users: set a new password (current one required, 403 28P01 when wrong). Ends every other session of the account. 204.';
revoke execute on function api.change_password(text, text) from public;
grant execute on function api.change_password(text, text) to app_user, app_admin;

-- Reset tokens: only their SHA-256 is stored; no API role has any privilege on this table.
create table internal.password_resets (
    token_hash bytea primary key,
    user_id    uuid not null references internal.users (id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at    timestamptz
);
create index password_resets_user_idx on internal.password_resets (user_id, expires_at);
comment on table internal.password_resets is 'SHA-256 of password reset tokens: single use, 1 hour, at most 3 outstanding per account.';
alter table internal.password_resets enable row level security;  -- no policy, no grant

insert into internal.settings (name, value)
values ('password_reset', '{"token_seconds": 3600, "max_outstanding": 3, "link": "http://127.0.0.1:3000/reset-password"}')
on conflict (name) do nothing;

create function internal.set_password_reset(changes jsonb) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    merged jsonb := (select value from internal.settings where name = 'password_reset') || coalesce(changes, '{}');
begin
    if exists (select 1 from jsonb_object_keys(changes) k where k not in ('token_seconds', 'max_outstanding', 'link'))
       or jsonb_typeof(merged -> 'token_seconds') <> 'number'
       or (merged ->> 'token_seconds')::numeric not between 300 and 86400
       or jsonb_typeof(merged -> 'max_outstanding') <> 'number'
       or (merged ->> 'max_outstanding')::numeric not between 1 and 10
       or merged ->> 'link' !~ '^https?://[^\s#]+$' then
        raise exception using errcode = '22023',
            message = 'password reset settings: token_seconds 300..86400, max_outstanding 1..10, link an http(s) URL without #';
    end if;
    update internal.settings set value = merged where name = 'password_reset';
end
$$;
comment on function internal.set_password_reset(jsonb) is
    'Change token_seconds, max_outstanding and link (the page that receives #token=... ) of password reset.';
revoke execute on function internal.set_password_reset(jsonb) from public;

-- Addresses the outbox can carry (queue_mail refuses <>,;" and line breaks): an account that could not be
-- mailed would answer request_password_reset differently from an unknown email.
create or replace function internal.check_email(email text) returns void
language plpgsql immutable
set search_path = pg_catalog
as $$
begin
    if email is null or email !~ '^[^@\s<>,;"()\[\]\\]+@[^@\s<>,;"()\[\]\\]+\.[^@\s<>,;"()\[\]\\]+$'
       or length(email) > 254 then
        raise exception using errcode = '22023', message = 'email is not a valid address',
            hint = 'use the form name@example.com';
    end if;
end
$$;
comment on function internal.check_email(text) is 'Refuse anything but one plain address (no display names, lists or quotes).';
revoke execute on function internal.check_email(text) from public;

-- Makes a reset token for an account, or null when it has too many outstanding. Returns the link.
create function internal.reset_link(account internal.users) returns text
language plpgsql
set search_path = pg_catalog, internal, public
as $$
declare
    conf jsonb := (select value from internal.settings where name = 'password_reset');
    token text := auth.base64url_encode(gen_random_bytes(32));
begin
    if (select count(*) from internal.password_resets r
        where r.user_id = account.id and r.used_at is null and r.expires_at > now())
       >= (conf ->> 'max_outstanding')::integer then
        return null;
    end if;
    insert into internal.password_resets (token_hash, user_id, expires_at)
    values (sha256(convert_to(token, 'utf8')), account.id,
            now() + make_interval(secs => (conf ->> 'token_seconds')::integer));
    perform internal.audit('password_reset_requested', account.id, account.email);
    -- in the fragment: browsers do not send it to servers, so it stays out of access logs
    return (conf ->> 'link') || '#token=' || token;
end
$$;
revoke execute on function internal.reset_link(internal.users) from public;

create function internal.send_reset_mail(account internal.users) returns boolean
language plpgsql
set search_path = pg_catalog, internal, public
as $$
declare
    link text;
begin
    link := internal.reset_link(account);  -- inside the block: a refused address leaves no token behind
    if link is null then
        return false;
    end if;
    -- an address the outbox refuses (an account made before check_email was this strict) gets no
    -- mail and the same answer as everyone: the caller cannot tell
    perform internal.queue_mail(account.email, 'Reset your Churnistic password',
        format(E'Someone asked to reset the password of your Churnistic account %s.\n\n'
               'To choose a new password, open this link within the hour:\n\n%s\n\n'
               'If it was not you, ignore this message: your password stays as it is.\n', account.email, link),
        'password_reset');
    return true;
exception when invalid_parameter_value then
    return false;
end
$$;
revoke execute on function internal.send_reset_mail(internal.users) from public;

create function api.request_password_reset(email text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    account internal.users;
begin
    perform internal.check_email(email);
    select * into account from internal.users u where lower(u.email) = lower(trim(request_password_reset.email));
    if account.id is not null and account.disabled_at is null then
        perform internal.send_reset_mail(account);
    end if;
end
$$;
comment on function api.request_password_reset(text) is
    'Email a password reset link (valid 1 hour, single use) to the account with this email. Answers 204 whether or not the account exists.';
revoke execute on function api.request_password_reset(text) from public;
grant execute on function api.request_password_reset(text) to anonymous, app_user, app_admin;

create function api.reset_password(token text, new_password text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    presented bytea := sha256(convert_to(coalesce(reset_password.token, ''), 'utf8'));
    reset internal.password_resets;
    account internal.users;
begin
    select * into reset from internal.password_resets r where r.token_hash = presented for update;
    if reset.token_hash is null or reset.used_at is not null or reset.expires_at <= now() then
        raise exception using errcode = '22023', message = 'password reset link is invalid or has expired',
            hint = 'ask for a new one with request_password_reset';
    end if;
    select * into account from internal.users where id = reset.user_id;
    if account.disabled_at is not null then
        raise exception using errcode = '22023', message = 'password reset link is invalid or has expired',
            hint = 'ask for a new one with request_password_reset';
    end if;
    perform internal.check_password(new_password);  -- a refused password leaves the link usable
    update internal.users set password = crypt(new_password, gen_salt('bf', 10)), tokens_valid_after = now()
    where id = account.id;
    update internal.password_resets set used_at = now() where user_id = account.id and used_at is null;
    perform internal.revoke_sessions(account.id, 'password_reset');
    delete from internal.login_failures where account_key = internal.pseudonym('login:' || lower(account.email));
    perform internal.audit('password_reset', account.id, account.email);
end
$$;
comment on function api.reset_password(text, text) is
    'Set a new password with the token of a reset link. Ends every session of the account; the link (and any other outstanding one) stops working. 204; 400 when the link is invalid, used or expired.';
revoke execute on function api.reset_password(text, text) from public;
grant execute on function api.reset_password(text, text) to anonymous, app_user, app_admin;

select cron.schedule('purge-password-resets', '43 * * * *',
                     $$delete from internal.password_resets where expires_at < now() - interval '1 day'$$);
