-- JWT signing keys with ids and an overlap: the current key signs, a staged key and retired keys still verify.
--
-- The keys stay in internal.secrets, whose rows no dump ever holds (backup: SECRET_TABLES). Rows:
--   'jwt_secret'                   the current signing key (internal.secret('jwt_secret') as before)
--   'jwt_secret_next'              a staged key: gateways already accept it, SQL does not sign with it yet
--   'jwt_secret_previous:<kid>'    a retired key, accepted until verify_until
-- A key's id (`kid` in each token's header) is a fingerprint of the key itself (HMAC of a fixed label
-- keyed with it): the same key always has the same kid, so after a restore re-installs the environment's key,
-- tokens issued before still name a key the gateway has. It reveals nothing a signed token does not already
-- (a token is itself an HMAC that can be checked against guesses).

create function auth.jwt_kid(secret text) returns text
language sql immutable strict
set search_path = pg_catalog, public
as $$ select left(auth.base64url_encode(hmac('referral-service jwt kid', secret, 'sha256')), 16) $$;
comment on function auth.jwt_kid(text) is 'Key id of a JWT signing key: a 16-character fingerprint (HMAC-SHA256 of a fixed label).';
revoke execute on function auth.jwt_kid(text) from public;

alter table internal.secrets
    add column kid text unique,
    add column created_at timestamptz not null default now(),
    add column verify_until timestamptz;
comment on column internal.secrets.kid is 'JWT keys only: the key id (auth.jwt_kid of the value), set by a trigger.';
comment on column internal.secrets.verify_until is 'Retired JWT keys only: tokens signed with it are accepted until then.';

create function internal.secrets_kid() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
    new.kid := case when new.name like 'jwt\_secret%' then auth.jwt_kid(new.value) end;
    return new;
end
$$;
comment on function internal.secrets_kid() is 'Keeps internal.secrets.kid the fingerprint of each JWT key.';
revoke execute on function internal.secrets_kid() from public;

create trigger secrets_kid before insert or update of name, value on internal.secrets
for each row execute function internal.secrets_kid();

update internal.secrets set kid = auth.jwt_kid(value) where name = 'jwt_secret';

-- The same HS256 signature as before, with the key's id in the header, so every existing caller
-- (api.login and others passing internal.secret('jwt_secret')) issues tokens a JWKS can route by kid.
create or replace function auth.jwt_sign(payload jsonb, secret text) returns text
language sql immutable strict
set search_path = pg_catalog, public
as $$
    with parts as (
        select auth.base64url_encode(convert_to(
                   '{"alg":"HS256","typ":"JWT","kid":"' || auth.jwt_kid(secret) || '"}', 'utf8'))
               || '.' || auth.base64url_encode(convert_to(payload::text, 'utf8')) as signing_input
    )
    select signing_input || '.' || auth.base64url_encode(hmac(signing_input, secret, 'sha256')) from parts
$$;
comment on function auth.jwt_sign(jsonb, text) is 'Sign a payload as an HS256 JWT whose header names the key (kid).';

-- Sign with the current key: what new code should call.
create function auth.jwt_sign(payload jsonb) returns text
language plpgsql stable strict security definer
set search_path = pg_catalog, internal
as $$
declare
    key text := (select value from internal.secrets where name = 'jwt_secret');
begin
    if key is null then
        raise exception using errcode = 'P0001', message = 'no JWT signing key installed',
            hint = 'run: referral-service migrate';
    end if;
    return auth.jwt_sign(payload, key);
end
$$;
comment on function auth.jwt_sign(jsonb) is 'Sign a payload as an HS256 JWT with the current signing key (kid in the header).';
revoke execute on function auth.jwt_sign(jsonb) from public;

-- What gateways verify with: the current, staged and still-valid retired keys as a JWKS (RFC 7517).
create function internal.jwt_keyset(at timestamptz default now()) returns jsonb
language sql stable security definer
set search_path = pg_catalog, internal
as $$
    select jsonb_build_object('keys', coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'kty', 'oct', 'alg', 'HS256', 'kid', s.kid,
               'k', auth.base64url_encode(convert_to(s.value, 'utf8')),
               -- not a registered JWK member: the gateway stops accepting a retired key at this time
               'exp', extract(epoch from s.verify_until)::bigint))
           order by s.name <> 'jwt_secret', s.name <> 'jwt_secret_next', s.verify_until desc), '[]'))
    from internal.secrets s
    where s.name in ('jwt_secret', 'jwt_secret_next')
       or (s.name like 'jwt\_secret\_previous:%' and s.verify_until > at)
$$;
comment on function internal.jwt_keyset(timestamptz) is 'JWKS of the keys gateways accept: current, staged, retired until verify_until (exp).';
revoke execute on function internal.jwt_keyset(timestamptz) from public;
