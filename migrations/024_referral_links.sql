-- Members' referral links (issue 14): one link per member and offer, normalised and checked against the
-- offer's link patterns, and a fair rotation that serves them (least served over a sliding window, ties at
-- random), records each serve as a click, and answers with a 302 through response.status/headers.
--
-- Why POST: PostgREST runs every GET READ ONLY, and a serve must write (the click, the counters that keep
-- the rotation fair). So api.referral_link is VOLATILE and called with POST (JSON, or an HTML form); the
-- shareable browser link is GET /rpc/referral_go?offer_id=..., a read-only page that posts the form.

-- --- settings ----------------------------------------------------------------------------------------------

insert into internal.settings (name, value)
values ('referral', '{"min_account_age_days": 7, "rotation_window_days": 30, "sticky_seconds": 1800,
                      "dedup_window_seconds": 86400, "serves_per_minute": 30, "report_threshold": 3,
                      "report_window_days": 30, "reports_per_day": 10, "strike_threshold": 3,
                      "strike_decay_days": 180, "visitor_key_days": 30}')
on conflict (name) do nothing;

create function internal.referral_setting(key text) returns integer
language sql stable
set search_path = pg_catalog, internal
as $$ select (value ->> key)::integer from internal.settings where name = 'referral' $$;
comment on function internal.referral_setting(text) is 'One key of the referral settings (internal.settings row referral); null: off.';
revoke execute on function internal.referral_setting(text) from public;

-- Operators: `select internal.set_referral_settings('{"min_account_age_days": 0}')`. Every value is a
-- whole number >= 0 (min_account_age_days) or >= 1; null turns a limit off (not the rotation window).
create function internal.set_referral_settings(changes jsonb) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    current jsonb := (select value from internal.settings where name = 'referral');
    k text;
    v jsonb;
begin
    for k, v in select * from jsonb_each(coalesce(changes, '{}')) loop
        if not current ? k then
            raise exception using errcode = '22023', message = format('unknown referral setting %L', k),
                hint = 'known: ' || (select string_agg(x, ', ' order by x) from jsonb_object_keys(current) x);
        end if;
        if not (jsonb_typeof(v) = 'number' and v::text ~ '^\d+$'
                and (v::text::bigint >= 1 or (k = 'min_account_age_days' and v::text::bigint = 0))
                and v::text::bigint <= 100000000)
           and not (jsonb_typeof(v) = 'null' and k not in ('rotation_window_days', 'min_account_age_days')) then
            raise exception using errcode = '22023',
                message = format('referral setting %s must be a whole number of at least 1, got %s', k, v),
                hint = 'min_account_age_days may be 0; null turns a limit off';
        end if;
    end loop;
    update internal.settings set value = current || changes where name = 'referral';
end
$$;
comment on function internal.set_referral_settings(jsonb) is
    'Change referral settings: min_account_age_days, rotation_window_days, sticky_seconds, dedup_window_seconds, serves_per_minute, report_threshold, report_window_days, reports_per_day, strike_threshold, strike_decay_days, visitor_key_days.';
revoke execute on function internal.set_referral_settings(jsonb) from public;

-- --- URLs --------------------------------------------------------------------------------------------------

-- The one spelling of a link, so that duplicates are recognised: https (http is upgraded), lower-case host
-- without a trailing dot, no default port, no fragment, no empty query, path "/" when empty. Refused: other
-- schemes, user names, other ports, IP addresses, dot segments (they would step out of a path prefix),
-- whitespace, control and non-ASCII characters (percent-encode them; punycode for host names).
create function internal.normalize_referral_url(url text) returns text
language plpgsql immutable
set search_path = pg_catalog
as $$
declare
    raw text := btrim(url);
    parts text[];
    hostport text[];
    scheme text;
    host text;
    path text;
begin
    if raw is null or raw = '' then
        raise exception using errcode = '22023', message = 'url is required';
    end if;
    if length(raw) > 2048 then
        raise exception using errcode = '22023', message = 'url is too long: at most 2048 characters';
    end if;
    if raw ~ '[^\x21-\x7e]' then
        raise exception using errcode = '22023',
            message = 'url must not contain spaces, control or non-ASCII characters',
            hint = 'percent-encode them; write international host names in punycode (xn--...)';
    end if;
    parts := regexp_match(raw, '^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$');
    if parts is null then
        raise exception using errcode = '22023', message = 'url must be an absolute https link',
            hint = 'e.g. https://www.issuer.example/refer/...';
    end if;
    scheme := lower(parts[1]);
    if scheme not in ('https', 'http') then
        raise exception using errcode = '22023', message = format('url must be an https link, not %s', scheme);
    end if;
    if parts[2] like '%@%' then
        raise exception using errcode = '22023', message = 'url must not contain a user name or password';
    end if;
    hostport := regexp_match(parts[2], '^([^:]*)(?::(\d*))?$');
    host := rtrim(lower(coalesce(hostport[1], '')), '.');
    if hostport is null or host !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'
       or length(host) > 253 then
        raise exception using errcode = '22023', message = 'url must name a host such as www.issuer.example',
            hint = 'IP addresses and bare names are not accepted';
    end if;
    if coalesce(hostport[2], '') not in ('', case scheme when 'https' then '443' else '80' end) then
        raise exception using errcode = '22023', message = 'url must not name a port';
    end if;
    path := case when parts[3] = '' then '/' else parts[3] end;
    if path ~* '(^|/)(\.|%2e){1,2}(/|$)' then
        raise exception using errcode = '22023', message = 'url must not contain . or .. path segments';
    end if;
    return 'https://' || host || path || case when coalesce(parts[4], '?') = '?' then '' else parts[4] end;
end
$$;
comment on function internal.normalize_referral_url(text) is
    'The normalised form of a referral URL (https, lower-case host, no default port, no fragment); raises 22023 with what to change.';
revoke execute on function internal.normalize_referral_url(text) from public;

-- Does a normalised URL fit one of the offer's patterns (host or *.host, optional path prefix)?
create function internal.referral_url_matches(url text, patterns text[]) returns boolean
language sql immutable
set search_path = pg_catalog
as $$
    select exists (
        select 1
        from unnest(patterns) p,
             lateral (select split_part(p, '/', 1) as phost,
                             case when strpos(p, '/') > 0 then substr(p, strpos(p, '/')) else '/' end as prefix) pat,
             lateral (select substring(url from '^https://([^/]+)') as host,
                             substring(url from '^https://[^/]+(/.*)$') as rest) u
        where (u.host = pat.phost or (pat.phost like '*.%' and right(u.host, length(pat.phost) - 1) = substr(pat.phost, 2)))
          and starts_with(u.rest, pat.prefix))
$$;
comment on function internal.referral_url_matches(text, text[]) is
    'True when a normalised https URL is on one of the hosts (or *.host) and under the path prefix of a pattern.';
revoke execute on function internal.referral_url_matches(text, text[]) from public;

-- A referrer host from a Referer header or a host name: lower-case, host name characters only, else null.
create function internal.referrer_host(value text) returns text
language sql immutable
set search_path = pg_catalog
as $$
    select h from (select lower(coalesce(substring(value from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)'),
                                         value)) as h) x
    where h ~ '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$'
$$;
comment on function internal.referrer_host(text) is 'The host of a referring URL (or a host name), or null when it is not one.';
revoke execute on function internal.referrer_host(text) from public;

-- --- links -------------------------------------------------------------------------------------------------

create table api.referral_links (
    id              uuid primary key default gen_random_uuid(),
    offer_id        uuid not null references api.offers (id) on delete cascade,
    owner_id        uuid not null references internal.users (id) on delete cascade,
    url             text not null,
    paused          boolean not null default false,
    capped_until    date,
    status          text not null default 'active' check (status in ('active', 'suspended', 'expired')),
    suspended_by    text check (suspended_by in ('reports', 'admin', 'strikes')),
    times_served    bigint not null default 0,
    unique_visitors bigint not null default 0,
    open_reports    integer not null default 0,
    last_served_at  timestamptz,
    verified_at     timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    check ((status = 'suspended') = (suspended_by is not null))
);
create unique index referral_links_url_key on api.referral_links (url);
create unique index referral_links_offer_owner_key on api.referral_links (offer_id, owner_id);
create index referral_links_owner_idx on api.referral_links (owner_id);
comment on table api.referral_links is
    'Members'' referral links, one per member and offer. A member sees and manages their own; admins see all. Others reach a link only through the rotation (rpc/referral_link).';
comment on column api.referral_links.url is 'Normalised on write (https, lower-case host, no fragment); must fit the offer''s referral_link_patterns.';
comment on column api.referral_links.paused is 'The owner took the link out of rotation.';
comment on column api.referral_links.capped_until is 'The owner reached the issuer''s annual cap: out of rotation until this day (e.g. 1 January).';
comment on column api.referral_links.status is 'active, suspended (reports, an admin or strikes) or expired (its offer ended).';
comment on column api.referral_links.times_served is 'Times the rotation served this link.';
comment on column api.referral_links.unique_visitors is 'Serves counted once per visitor per dedup window (the rotation''s fairness counts these).';
comment on column api.referral_links.open_reports is 'Reports not yet resolved.';
comment on column api.referral_links.verified_at is 'When the owner last submitted or re-verified the URL.';

create trigger referral_links_touch before update on api.referral_links
    for each row execute function internal.touch_updated_at();

-- Why the owner may not share (null when they may). 025 adds strikes and bans.
create function internal.referral_member_blocked(member uuid) returns text
language sql stable
set search_path = pg_catalog, internal
as $$ select case when u.disabled_at is not null then 'disabled' end from internal.users u where u.id = member $$;
comment on function internal.referral_member_blocked(uuid) is 'Why a member''s links are out of rotation and they may not submit (null: they may).';
revoke execute on function internal.referral_member_blocked(uuid) from public;

-- Owner, offer, URL and eligibility rules of every write. SECURITY DEFINER: it reads accounts, other
-- members' links (duplicates) and standing, which members cannot see.
create function internal.referral_link_write() returns trigger
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    caller_role text := auth.jwt() ->> 'role';  -- null: an operator at the database
    offer api.offers;
    member internal.users;
    min_age integer := internal.referral_setting('min_account_age_days');
    blocked text;
begin
    if tg_op = 'INSERT' then
        if caller_role is distinct from 'app_admin' and caller_role is not null or new.owner_id is null then
            new.owner_id := auth.uid();
        end if;
        if new.owner_id is null then
            raise exception using errcode = '42501', message = 'sign in to share a referral link';
        end if;
    elsif new.offer_id <> old.offer_id or new.owner_id <> old.owner_id then
        raise exception using errcode = '22023', message = 'a link cannot move to another offer or member',
            hint = 'delete it and submit a new one';
    end if;
    if tg_op = 'INSERT' or new.url <> old.url then
        select * into offer from api.offers o where o.id = new.offer_id;
        if not found or not offer.referrals_accepted or offer.status <> 'active' then
            raise exception using errcode = '22023', message = 'this offer does not accept referral links';
        end if;
        select * into member from internal.users u where u.id = new.owner_id;
        blocked := internal.referral_member_blocked(new.owner_id);
        if blocked is not null then
            raise exception using errcode = '42501', message = format('this account may not share referral links (%s)', blocked);
        end if;
        if member.created_at > now() - make_interval(days => coalesce(min_age, 0)) then
            raise exception using errcode = '42501',
                message = format('accounts can share referral links once they are %s days old', min_age),
                hint = format('this account can from %s', (member.created_at + make_interval(days => min_age))::date);
        end if;
        new.url := internal.normalize_referral_url(new.url);
        if not internal.referral_url_matches(new.url, offer.referral_link_patterns) then
            raise exception using errcode = '22023',
                message = 'url is not this issuer''s referral link: no shorteners or redirects',
                hint = 'accepted: ' || array_to_string(offer.referral_link_patterns, ', ');
        end if;
        if exists (select 1 from api.referral_links l where l.url = new.url and l.id <> new.id) then
            raise exception using errcode = '23505', message = 'this referral link is already shared';
        end if;
        if exists (select 1 from api.referral_links l
                   where l.offer_id = new.offer_id and l.owner_id = new.owner_id and l.id <> new.id) then
            raise exception using errcode = '23505', message = 'you already share a link for this offer',
                hint = 'replace its url (PATCH) or delete it';
        end if;
        new.verified_at := now();
    end if;
    if new.capped_until is distinct from (case when tg_op = 'UPDATE' then old.capped_until end)
       and new.capped_until is not null
       and (new.capped_until <= current_date or new.capped_until > current_date + 366) then
        raise exception using errcode = '22023',
            message = 'capped_until must be a day after today and within a year', hint = 'e.g. next 1 January';
    end if;
    return new;
end
$$;
comment on function internal.referral_link_write() is
    'Trigger: owner from the JWT, offer accepts referrals, member eligible (account age, standing), URL normalised and on the issuer''s patterns, no duplicates, one link per offer.';
revoke execute on function internal.referral_link_write() from public;

create trigger referral_links_write before insert or update of offer_id, owner_id, url, capped_until
    on api.referral_links for each row execute function internal.referral_link_write();

alter table api.referral_links enable row level security;
-- Members see and manage only their own links; what they may change is limited by column grants.
create policy referral_links_own on api.referral_links for all to app_user
    using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy referral_links_admin on api.referral_links for all to app_admin using (true) with check (true);
grant select, delete on api.referral_links to app_user;
grant insert (offer_id, url, paused, capped_until), update (url, paused, capped_until) on api.referral_links to app_user;
grant select, insert, update, delete on api.referral_links to app_admin;

-- The owner reached the issuer's annual cap: out of rotation until `until` (default: next 1 January).
create function api.referral_cap_reached(link_id uuid, until date default null) returns api.referral_links
language sql
set search_path = pg_catalog, api
as $$
    update api.referral_links l
    set capped_until = coalesce(until, make_date(extract(year from current_date)::integer + 1, 1, 1))
    where l.id = link_id
    returning l.*
$$;
comment on function api.referral_cap_reached(uuid, date) is
    'Owners: mark the annual cap reached; the link leaves rotation until the given day (default next 1 January). Null when it is not your link.';
revoke execute on function api.referral_cap_reached(uuid, date) from public;
grant execute on function api.referral_cap_reached(uuid, date) to app_user, app_admin;

-- --- serves and clicks -------------------------------------------------------------------------------------

-- Every serve. visitor is internal.visitor() (a keyed hash: no address is stored), purged after
-- visitor_key_days; counted: the first serve of this link to this visitor in the dedup window.
create table internal.referral_clicks (
    id            bigint generated always as identity primary key,
    at            timestamptz not null default now(),
    offer_id      uuid not null references api.offers (id) on delete cascade,
    link_id       uuid references api.referral_links (id) on delete set null,
    visitor       bytea,
    counted       boolean not null,
    referrer_host text
);
create index referral_clicks_visitor_idx on internal.referral_clicks (visitor, offer_id, at) where visitor is not null;
create index referral_clicks_visitor_time_idx on internal.referral_clicks (visitor, at) where visitor is not null;
create index referral_clicks_link_idx on internal.referral_clicks (link_id, at);
create index referral_clicks_at_idx on internal.referral_clicks (at);
comment on table internal.referral_clicks is 'Each serve of the rotation: offer, link, visitor pseudonym, whether it counted, referrer host.';
alter table internal.referral_clicks enable row level security;  -- no policy: definer functions only

-- Counted serves per link and UTC day: the rotation sums the window from here (a few rows per link).
create table internal.referral_serves (
    link_id uuid not null references api.referral_links (id) on delete cascade,
    day     date not null,
    serves  integer not null check (serves > 0),
    primary key (link_id, day)
);
comment on table internal.referral_serves is 'Counted serves per link and UTC day; the rotation''s sliding window.';
alter table internal.referral_serves enable row level security;  -- no policy: definer functions only

-- The links the rotation may serve for an offer to a caller. No SET clause, so that the planner inlines it
-- into the rotation's queries (it is called only from SECURITY DEFINER functions with a pinned search_path,
-- and names every object with its schema). 025 adds bans and strikes.
create function internal.referral_eligible(offer uuid, caller uuid) returns setof api.referral_links
language sql stable
as $$
    select l.* from api.referral_links l
    join api.offers o on o.id = l.offer_id
    join internal.users u on u.id = l.owner_id
    where l.offer_id = offer and o.status = 'active' and o.referrals_accepted
      and l.status = 'active' and not l.paused
      and (l.capped_until is null or l.capped_until <= current_date)
      and l.owner_id is distinct from caller
      and u.disabled_at is null
$$;
comment on function internal.referral_eligible(uuid, uuid) is
    'Links in rotation for an offer: active offer accepting referrals; link active, not paused or capped; owner in good standing; not the caller''s.';
revoke execute on function internal.referral_eligible(uuid, uuid) from public;

create function internal.referral_refusal(status integer, code text, message text, hint text,
                                          headers json default '{}') returns void
language plpgsql
set search_path = pg_catalog
as $$
begin
    raise sqlstate 'PGRST' using
        message = json_build_object('code', code, 'message', message, 'details', null, 'hint', hint)::text,
        detail = json_build_object('status', status, 'headers', headers)::text;
end
$$;
comment on function internal.referral_refusal(integer, text, text, text, json) is
    'Raise a PostgREST error with its own status (RAISE SQLSTATE PGRST).';
revoke execute on function internal.referral_refusal(integer, text, text, text, json) from public;

-- One serve: the visitor's recent link when it is still eligible (a refresh does not cycle), else the
-- least served eligible link over the window, ties at random. A per-offer transaction lock serialises
-- draws, so each one sees the counts of the one before (no lost updates, no herd on one link).
create function api.referral_link(offer_id uuid, format text default 'redirect', via text default null) returns json
language plpgsql volatile security definer
set search_path = pg_catalog, internal, api
as $$
declare
    target uuid := referral_link.offer_id;
    mode text := coalesce(nullif(referral_link.format, ''), 'redirect');
    offer api.offers;
    who bytea;
    caller uuid := auth.uid();
    -- the settings row read once (one lookup instead of one function call per key)
    conf jsonb := (select st.value from internal.settings st where st.name = 'referral');
    per_minute integer := (conf ->> 'serves_per_minute')::integer;
    sticky integer := (conf ->> 'sticky_seconds')::integer;
    dedup integer := (conf ->> 'dedup_window_seconds')::integer;
    window_days integer := coalesce((conf ->> 'rotation_window_days')::integer, 30);
    today date := internal.utc_day(now());
    nth_newest timestamptz;
    wait integer;
    chosen_id uuid;
    chosen_url text;
    is_counted boolean;
begin
    if mode not in ('redirect', 'json') then
        raise exception using errcode = '22023', message = 'format must be redirect or json';
    end if;
    if current_setting('transaction_read_only') = 'on' then
        perform internal.referral_refusal(405, 'RS405', 'referral_link records a serve: call it with POST',
            'browsers: link to /rpc/referral_go?offer_id=... (a page that posts here)', '{"Allow": "POST"}');
    end if;
    select * into offer from api.offers o where o.id = target and o.status = 'active' and o.referrals_accepted;
    if not found then
        perform internal.referral_refusal(404, 'RS404', 'no active offer that accepts referral links has this id', null);
    end if;
    who := internal.visitor();
    if per_minute is not null then
        select c.at into nth_newest from internal.referral_clicks c
        where c.visitor = who and c.at > now() - interval '1 minute'
        order by c.at desc offset per_minute - 1 limit 1;
        if nth_newest is not null then
            wait := greatest(1, ceil(extract(epoch from nth_newest + interval '1 minute' - now()))::integer);
            perform internal.referral_refusal(429, 'RS429', 'too many referral link requests',
                'try again in ' || wait || ' s', json_build_object('Retry-After', wait::text));
        end if;
    end if;
    perform pg_advisory_xact_lock(1414, hashtext(target::text));
    if sticky is not null then
        select e.id, e.url into chosen_id, chosen_url
        from (select c.link_id from internal.referral_clicks c
              where c.visitor = who and c.offer_id = target and c.at > now() - make_interval(secs => sticky)
              order by c.at desc limit 1) recent
        join internal.referral_eligible(target, caller) e on e.id = recent.link_id;
    end if;
    if chosen_id is null then
        select e.id, e.url into chosen_id, chosen_url
        from internal.referral_eligible(target, caller) e
        order by (select coalesce(sum(s.serves), 0) from internal.referral_serves s
                  where s.link_id = e.id and s.day > today - window_days), random()
        limit 1;
    end if;
    if chosen_id is null then
        perform internal.referral_refusal(404, 'RS404', 'no referral link is available for this offer right now',
            case when offer.public_url is not null then 'the public link: ' || offer.public_url end);
    end if;
    is_counted := dedup is null or not exists (
        select 1 from internal.referral_clicks c
        where c.visitor = who and c.offer_id = target and c.link_id = chosen_id and c.counted
          and c.at > now() - make_interval(secs => dedup));
    insert into internal.referral_clicks (offer_id, link_id, visitor, counted, referrer_host)
    values (target, chosen_id, who, is_counted,
            internal.referrer_host(coalesce(nullif(via, ''),
                coalesce(nullif(current_setting('request.headers', true), ''), '{}')::json ->> 'referer')));
    if is_counted then
        insert into internal.referral_serves as s (link_id, day, serves) values (chosen_id, today, 1)
        on conflict (link_id, day) do update set serves = s.serves + 1;
    end if;
    update api.referral_links l
    set times_served = l.times_served + 1,
        unique_visitors = l.unique_visitors + case when is_counted then 1 else 0 end,
        last_served_at = now()
    where l.id = chosen_id;
    if mode = 'redirect' then
        perform set_config('response.status', '302', true);
        perform set_config('response.headers',
            json_build_array(json_build_object('Location', chosen_url), json_build_object('Cache-Control', 'no-store'))::text,
            true);
    end if;
    return json_build_object('offer_id', target, 'link_id', chosen_id, 'url', chosen_url, 'public_url', offer.public_url);
end
$$;
comment on function api.referral_link(uuid, text, text) is
    'Serve a member''s referral link for an offer, fairly rotated: POST {"offer_id": "..."} answers 302 to the link (format=json: 200 with {offer_id, link_id, url, public_url}). Never your own link; one visitor keeps the same link for a while; at most serves_per_minute per visitor (then 429).';
revoke execute on function api.referral_link(uuid, text, text) from public;
grant execute on function api.referral_link(uuid, text, text) to anonymous, app_user, app_admin;

-- --- the shareable browser link ----------------------------------------------------------------------------

-- A browser follows a shared link with GET, which PostgREST runs read-only. This page (STABLE, so GET
-- works) posts a form to rpc/referral_link at once; the form's 302 takes the browser to the member's link.
create domain api."text/html" as text;
comment on domain api."text/html" is 'Media type handler: functions returning it answer text/html.';

create function internal.html_escape(value text) returns text
language sql immutable
set search_path = pg_catalog
as $$ select replace(replace(replace(replace(replace(value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;') $$;
comment on function internal.html_escape(text) is 'Text made safe for HTML content and attribute values.';
revoke execute on function internal.html_escape(text) from public;

-- SECURITY DEFINER: anonymous visitors have no rights on the internal helpers; it reads active offers only.
create function api.referral_go(offer_id uuid) returns api."text/html"
language plpgsql stable security definer
set search_path = pg_catalog, internal, api
as $$
declare
    offer api.offers;
    via text := internal.referrer_host(
        coalesce(nullif(current_setting('request.headers', true), ''), '{}')::json ->> 'referer');
begin
    select * into offer from api.offers o where o.id = referral_go.offer_id and o.status = 'active' and o.referrals_accepted;
    if not found then
        raise sqlstate 'PGRST' using
            message = '{"code": "RS404", "message": "no active offer that accepts referral links has this id", "details": null, "hint": null}',
            detail = '{"status": 404, "headers": {}}';
    end if;
    perform set_config('response.headers', '[{"Cache-Control": "no-store"}, {"X-Robots-Tag": "noindex"}]', true);
    return '<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        || '<title>' || internal.html_escape(offer.title) || '</title></head><body>'
        || '<form method="post" action="referral_link">'
        || '<input type="hidden" name="offer_id" value="' || offer.id || '">'
        || '<input type="hidden" name="via" value="' || internal.html_escape(coalesce(via, '')) || '">'
        || '<button type="submit">Continue to ' || internal.html_escape(offer.institution) || '</button></form>'
        || '<script>document.forms[0].submit()</script></body></html>';
end
$$;
comment on function api.referral_go(uuid) is
    'The shareable browser link of an offer''s referral rotation: GET ?offer_id=... answers an HTML page that posts to rpc/referral_link (which redirects).';
revoke execute on function api.referral_go(uuid) from public;
grant execute on function api.referral_go(uuid) to anonymous, app_user, app_admin;
