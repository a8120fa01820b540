-- auth.check_session (018) runs before every signed-in request. It read the token's sid inside an exception
-- block, and an exception block opens a subtransaction each time it runs: bench W5 (an admin's PATCH) lost
-- ~30 % of its throughput to it. The sid's form is now checked by a pattern, and a sid that passes it always
-- casts to uuid. Sessions' ids are written in the standard form; the rarer spellings uuid input also takes
-- (braces, hyphens elsewhere) are refused as 'JWT session is not valid', like any other malformed sid.
-- A migration of its own: 018 had already been applied, and the runner refuses a changed file.

create or replace function auth.check_session() returns void
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
        -- a pattern, not an exception block: that would open a subtransaction on every request
        if claims ->> 'sid' !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
            perform internal.session_refused('JWT session is not valid');
        end if;
        sid := (claims ->> 'sid')::uuid;
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
