-- Users: bcrypt hashes in a private table; the API sees a view without the hash.

create table internal.users (
    id         uuid primary key default gen_random_uuid(),
    email      text not null check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and length(email) <= 254),
    password   text not null,
    role       text not null default 'user' check (role in ('user', 'admin')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index users_email_key on internal.users (lower(email));
comment on table internal.users is 'Accounts; password is a bcrypt hash that no API role can read.';

create function internal.touch_updated_at() returns trigger
language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end
$$;
comment on function internal.touch_updated_at() is 'Trigger: keep updated_at current on every update.';

revoke execute on function internal.touch_updated_at() from public;  -- triggers need no grant to run

create trigger users_touch before update on internal.users
    for each row execute function internal.touch_updated_at();

alter table internal.users enable row level security;

-- Column privileges: API roles can never name the password column, whatever the path.
grant select (id, email, role, created_at, updated_at) on internal.users to app_user, app_admin;
grant update (email, role) on internal.users to app_admin;
grant delete on internal.users to app_admin;
-- the view below reads through the invoker's rights, which need the schema
grant usage on schema internal to app_user, app_admin;

-- A user sees their own row; an admin sees every row.
create policy users_select_own on internal.users for select to app_user
    using (id = (select auth.uid()));
create policy users_admin_select on internal.users for select to app_admin using (true);
-- Only admins change accounts (e.g. promote to admin); users cannot edit their own role.
create policy users_admin_update on internal.users for update to app_admin using (true) with check (true);
create policy users_admin_delete on internal.users for delete to app_admin using (id <> (select auth.uid()));

create view api.users with (security_invoker = true) as
    select id, email, role, created_at, updated_at from internal.users;
comment on view api.users is 'Accounts without their password hash: a user sees their own, an admin sees all.';
comment on column api.users.role is 'user or admin; only an admin can change it.';
grant select on api.users to app_user, app_admin;
grant update (email, role), delete on api.users to app_admin;

-- Password rules shared by signup and the CLI: 10..72 bytes (bcrypt ignores bytes past 72),
-- and not a single character class.
create function internal.check_password(password text) returns void
language plpgsql immutable
as $$
begin
    if password is null or length(password) < 10 then
        raise exception using errcode = '22023', message = 'password is too short: use at least 10 characters';
    end if;
    if octet_length(password) > 72 then
        raise exception using errcode = '22023', message = 'password is too long: use at most 72 bytes';
    end if;
    if password ~ '^[a-zA-Z]+$' or password ~ '^[0-9]+$' then
        raise exception using errcode = '22023',
            message = 'password is too weak: mix letters with digits or symbols';
    end if;
end
$$;

create function internal.check_email(email text) returns void
language plpgsql immutable
as $$
begin
    if email is null or email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' or length(email) > 254 then
        raise exception using errcode = '22023', message = 'email is not a valid address',
            hint = 'use the form name@example.com';
    end if;
end
$$;

revoke execute on function internal.check_password(text), internal.check_email(text) from public;

-- Creates an account with any role. Not exposed: the CLI and admins (through api.create_user) use it.
create function internal.create_user(email text, password text, role text default 'user') returns uuid
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    new_id uuid;
begin
    perform internal.check_email(email);
    perform internal.check_password(password);
    insert into internal.users (email, password, role)
    values (lower(trim(email)), crypt(password, gen_salt('bf', 10)), create_user.role)
    returning id into new_id;
    return new_id;
exception when unique_violation then
    raise exception using errcode = '23505', message = 'an account with this email already exists';
end
$$;
revoke execute on function internal.create_user(text, text, text) from public;

create function api.signup(email text, password text) returns uuid
language sql security definer
set search_path = pg_catalog, internal, public
as $$ select internal.create_user(email, password, 'user') $$;
comment on function api.signup(text, text) is
    'Create an account with role user and return its id. Passwords need 10+ characters, not just letters or digits.';
revoke execute on function api.signup(text, text) from public;
grant execute on function api.signup(text, text) to anonymous, app_user, app_admin;

create function api.create_user(email text, password text, role text default 'user') returns uuid
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
begin
    -- the grant already limits this to app_admin; checked again because this function is a definer
    if (select auth.role()) <> 'app_admin' then
        raise exception using errcode = '42501', message = 'only admins can create accounts with a role';
    end if;
    if role not in ('user', 'admin') then
        raise exception using errcode = '22023', message = 'role must be user or admin';
    end if;
    return internal.create_user(email, password, role);
end
$$;
comment on function api.create_user(text, text, text) is 'Admins only: create an account with role user or admin.';
revoke execute on function api.create_user(text, text, text) from public;
grant execute on function api.create_user(text, text, text) to app_admin;

-- A bcrypt hash of a random password: unknown emails are checked against it so that a wrong
-- email costs as much time as a wrong password.
create function internal.dummy_hash() returns text
language sql immutable
as $$ select '$2a$10$Nc7F3M4VMd6Fgn0taaXMcec5g26Udv7KpeeEnfPVzn7k9kb61vd1i'::text $$;

revoke execute on function internal.dummy_hash() from public;

create function api.login(email text, password text) returns text
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    account internal.users;
    issued bigint := floor(extract(epoch from now()))::bigint;
begin
    select * into account from internal.users u where lower(u.email) = lower(trim(login.email));
    if account.id is null then
        perform crypt(login.password, internal.dummy_hash());
    elsif account.password = crypt(login.password, account.password) then
        return auth.jwt_sign(jsonb_build_object(
            'role', case account.role when 'admin' then 'app_admin' else 'app_user' end,
            'sub', account.id,
            'user_id', account.id,
            'email', account.email,
            'iat', issued,
            'exp', issued + 60 * 60 * 24
        ), internal.secret('jwt_secret'));
    end if;
    raise exception using errcode = '28P01', message = 'invalid email or password';
end
$$;
comment on function api.login(text, text) is 'Exchange email and password for a JWT valid 24 hours.';
revoke execute on function api.login(text, text) from public;
grant execute on function api.login(text, text) to anonymous, app_user, app_admin;
