-- Request identity accessors, HS256 JWT signing/verification in SQL, and the private secrets table.

-- The claims the gateway set for this transaction ({} when none).
create function auth.jwt() returns jsonb
language sql stable
as $$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;
comment on function auth.jwt() is 'Claims of the current request (request.jwt.claims), {} when none.';

-- The database role named by the JWT (anonymous when there is no token).
create function auth.role() returns text
language sql stable
as $$ select coalesce(auth.jwt() ->> 'role', 'anonymous') $$;
comment on function auth.role() is 'Role claim of the current request.';

-- The signed-in user's id, or null for anonymous requests.
create function auth.uid() returns uuid
language sql stable
as $$ select nullif(coalesce(auth.jwt() ->> 'sub', auth.jwt() ->> 'user_id'), '')::uuid $$;
comment on function auth.uid() is 'User id (sub claim) of the current request, null when anonymous.';

revoke execute on function auth.jwt(), auth.role(), auth.uid() from public;
grant execute on function auth.jwt(), auth.role(), auth.uid() to anonymous, app_user, app_admin;

-- base64url without padding (RFC 7515 section 2)
create function auth.base64url_encode(data bytea) returns text
language sql immutable strict
as $$ select translate(rtrim(replace(encode(data, 'base64'), E'\n', ''), '='), '+/', '-_') $$;

create function auth.base64url_decode(data text) returns bytea
language sql immutable strict
as $$
    select decode(rpad(translate(data, '-_', '+/'), 4 * ((length(data) + 3) / 4), '='), 'base64')
$$;

create function auth.jwt_sign(payload jsonb, secret text) returns text
language sql immutable strict
as $$
    with parts as (
        select auth.base64url_encode(convert_to('{"alg":"HS256","typ":"JWT"}', 'utf8'))
               || '.' || auth.base64url_encode(convert_to(payload::text, 'utf8')) as signing_input
    )
    select signing_input || '.' || auth.base64url_encode(hmac(signing_input, secret, 'sha256')) from parts
$$;
comment on function auth.jwt_sign(jsonb, text) is 'Sign a payload as an HS256 JWT.';

-- Returns the payload of a valid, unexpired HS256 token, or null for anything else.
create function auth.jwt_verify(token text, secret text, at timestamptz default now()) returns jsonb
language plpgsql immutable strict
as $$
declare
    parts text[] := string_to_array(token, '.');
    header jsonb;
    payload jsonb;
begin
    if array_length(parts, 1) <> 3 then
        return null;
    end if;
    header := convert_from(auth.base64url_decode(parts[1]), 'utf8')::jsonb;
    if header ->> 'alg' is distinct from 'HS256' then
        return null;
    end if;
    if auth.base64url_decode(parts[3]) <> hmac(parts[1] || '.' || parts[2], secret, 'sha256') then
        return null;
    end if;
    payload := convert_from(auth.base64url_decode(parts[2]), 'utf8')::jsonb;
    if payload ? 'exp' and (payload ->> 'exp')::numeric < extract(epoch from at) then
        return null;
    end if;
    return payload;
exception when others then
    return null;  -- malformed base64/JSON: not a valid token
end
$$;
comment on function auth.jwt_verify(text, text, timestamptz) is 'Payload of a valid HS256 JWT, null if invalid or expired.';

revoke execute on function auth.base64url_encode(bytea), auth.base64url_decode(text),
    auth.jwt_sign(jsonb, text), auth.jwt_verify(text, text, timestamptz) from public;

-- Secrets the database needs (the JWT signing key). Written by `referral-service migrate`
-- from the environment or .data/secrets.json; no API role has any privilege on it.
create table internal.secrets (
    name  text primary key,
    value text not null check (length(value) >= 32)
);
comment on table internal.secrets is 'Server-side secrets (JWT signing key); readable by definer functions only.';
alter table internal.secrets enable row level security;  -- and no policy: nobody but the owner

create function internal.secret(secret_name text) returns text
language sql stable security definer
set search_path = pg_catalog, internal
as $$ select value from internal.secrets where name = secret_name $$;
revoke execute on function internal.secret(text) from public;
