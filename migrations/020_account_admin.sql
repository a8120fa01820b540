-- Account administration (issue 11): one SQL function per operator command (`referral-service user ...`,
-- called as the database owner) and the same as RPCs for admins. The triggers of 018 audit every change,
-- move or end sessions, and keep the last admin.

create or replace view api.users with (security_invoker = true) as
    select id, email, role, created_at, updated_at, last_sign_in_at, disabled_at from internal.users;
comment on column api.users.disabled_at is 'Set while the account is disabled (no sign-in, every session ended).';
grant select (last_sign_in_at, disabled_at) on internal.users to app_user, app_admin;

create function internal.find_account(email text) returns internal.users
language plpgsql stable
set search_path = pg_catalog, internal
as $$
declare
    account internal.users;
begin
    select * into account from internal.users u where lower(u.email) = lower(trim(find_account.email));
    if account.id is null then
        raise exception using errcode = 'PT404', message = format('no account with email %s', trim(email));
    end if;
    return account;
end
$$;
revoke execute on function internal.find_account(text) from public;

create function internal.account_list()
returns table (email text, role text, created_at timestamptz, last_sign_in_at timestamptz, sessions bigint,
               disabled boolean)
language sql stable
set search_path = pg_catalog, internal
as $$
    select u.email, u.role, u.created_at, u.last_sign_in_at,
           (select count(*) from internal.sessions s
            where s.user_id = u.id and s.revoked_at is null and s.expires_at > now()),
           u.disabled_at is not null
    from internal.users u order by u.created_at, u.email
$$;
comment on function internal.account_list() is 'Accounts with their active session count (referral-service user list).';
revoke execute on function internal.account_list() from public;

create function internal.account_set_role(email text, role text) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    if role is null or role not in ('user', 'admin') then
        raise exception using errcode = '22023', message = 'role must be user or admin';
    end if;
    update internal.users set role = account_set_role.role where id = (internal.find_account(account_set_role.email)).id;
end
$$;
comment on function internal.account_set_role(text, text) is 'Make an account user or admin; its tokens of the old role stop working.';
revoke execute on function internal.account_set_role(text, text) from public;

create function internal.account_set_disabled(email text, disabled boolean) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    update internal.users set disabled_at = case when disabled then coalesce(disabled_at, now()) end
    where id = (internal.find_account(account_set_disabled.email)).id;
end
$$;
comment on function internal.account_set_disabled(text, boolean) is 'Disable (ends every session, refuses sign-in) or enable an account.';
revoke execute on function internal.account_set_disabled(text, boolean) from public;

create function internal.account_delete(email text) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    delete from internal.users where id = (internal.find_account(account_delete.email)).id;
end
$$;
comment on function internal.account_delete(text) is 'Delete an account and its sessions (its tokens stop working at once).';
revoke execute on function internal.account_delete(text) from public;

create function internal.account_sessions(email text)
returns table (id uuid, created_at timestamptz, refreshed_at timestamptz, expires_at timestamptz,
               revoked_at timestamptz, revoked_reason text, user_agent text, active boolean)
language sql stable
set search_path = pg_catalog, internal
as $$
    select s.id, s.created_at, s.refreshed_at, s.expires_at, s.revoked_at, s.revoked_reason, s.user_agent,
           s.revoked_at is null and s.expires_at > now()
    from internal.sessions s where s.user_id = (internal.find_account(email)).id
    order by s.created_at desc
$$;
comment on function internal.account_sessions(text) is 'Sessions of one account, newest first.';
revoke execute on function internal.account_sessions(text) from public;

create function internal.account_revoke(email text) returns integer
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    account internal.users := internal.find_account(email);
    ended integer;
begin
    ended := internal.revoke_sessions(account.id, 'revoked');
    update internal.users set tokens_valid_after = now() where id = account.id;
    perform internal.audit('sessions_revoked', account.id, account.email, jsonb_build_object('sessions', ended));
    return ended;
end
$$;
comment on function internal.account_revoke(text) is 'End every session of an account; returns how many were active.';
revoke execute on function internal.account_revoke(text) from public;

-- Reset mail (send true) or, for an operator without mail, the link itself (send false).
create function internal.account_reset_password(email text, send boolean) returns text
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    account internal.users := internal.find_account(email);
    link text;
begin
    if account.disabled_at is not null then
        raise exception using errcode = '22023', message = 'the account is disabled: enable it first';
    end if;
    if send then
        if not internal.send_reset_mail(account) then
            raise exception using errcode = '22023', message = 'too many reset links outstanding for this account',
                hint = 'wait for one to expire (1 hour) or use it';
        end if;
        return null;
    end if;
    link := internal.reset_link(account);
    if link is null then
        raise exception using errcode = '22023', message = 'too many reset links outstanding for this account',
            hint = 'wait for one to expire (1 hour) or use it';
    end if;
    return link;
end
$$;
comment on function internal.account_reset_password(text, boolean) is
    'Mail a password reset link (send) or return it (operators without mail).';
revoke execute on function internal.account_reset_password(text, boolean) from public;

-- The admin RPCs: the grant limits them to app_admin; checked again inside because they are definers.
create function internal.require_account_admin() returns void
language plpgsql stable
set search_path = pg_catalog, auth
as $$
begin
    if auth.role() is distinct from 'app_admin' then
        raise exception using errcode = '42501', message = 'only admins can manage accounts';
    end if;
end
$$;
comment on function internal.require_account_admin() is 'Raise 42501 unless the request is an admin''s.';
revoke execute on function internal.require_account_admin() from public;

create function api.set_user_role(email text, role text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_account_admin();
    perform internal.account_set_role(email, role);
end
$$;
comment on function api.set_user_role(text, text) is 'Admins only: make an account user or admin (not the last admin). 204.';

create function api.disable_user(email text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_account_admin();
    perform internal.account_set_disabled(email, true);
end
$$;
comment on function api.disable_user(text) is 'Admins only: disable an account; its sessions end at once. 204.';

create function api.enable_user(email text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_account_admin();
    perform internal.account_set_disabled(email, false);
end
$$;
comment on function api.enable_user(text) is 'Admins only: enable a disabled account. 204.';

create function api.delete_user(email text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_account_admin();
    if lower(trim(email)) = lower(auth.jwt() ->> 'email') then
        raise exception using errcode = '22023', message = 'admins cannot delete their own account';
    end if;
    perform internal.account_delete(email);
end
$$;
comment on function api.delete_user(text) is 'Admins only: delete another account (not the last admin). 204.';

create function api.revoke_user_sessions(email text) returns integer
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_account_admin();
    return internal.account_revoke(email);
end
$$;
comment on function api.revoke_user_sessions(text) is 'Admins only: end every session of an account; returns how many were active.';

create function api.send_password_reset(email text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_account_admin();
    perform internal.account_reset_password(email, true);
end
$$;
comment on function api.send_password_reset(text) is 'Admins only: mail a password reset link to an account. 204.';

revoke execute on function api.set_user_role(text, text), api.disable_user(text), api.enable_user(text),
    api.delete_user(text), api.revoke_user_sessions(text), api.send_password_reset(text) from public;
grant execute on function api.set_user_role(text, text), api.disable_user(text), api.enable_user(text),
    api.delete_user(text), api.revoke_user_sessions(text), api.send_password_reset(text) to app_admin;
