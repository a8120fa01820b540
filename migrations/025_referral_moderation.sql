-- Referral abuse, moderation, jobs and analytics (issue 14): dead-link reports that suspend a link after
-- K distinct members, strikes that decay, bans, an audit of every moderation action, admin RPCs,
-- pg_cron jobs (caps, expired offers, visitor keys, rollups) and the admin analytics.

create table internal.referral_reports (
    id          bigint generated always as identity primary key,
    link_id     uuid not null references api.referral_links (id) on delete cascade,
    reporter_id uuid not null references internal.users (id) on delete cascade,
    reason      text not null check (reason in ('expired', 'invalid', 'not_referral', 'spam')),
    note        text check (length(note) <= 500),
    at          timestamptz not null default now(),
    resolved_at timestamptz,
    resolution  text check (resolution in ('reverified', 'cleared'))
);
-- one open report per member and link (a member may report again after the link was cleared)
create unique index referral_reports_open_key on internal.referral_reports (link_id, reporter_id) where resolved_at is null;
create index referral_reports_reporter_idx on internal.referral_reports (reporter_id, at);
comment on table internal.referral_reports is 'Dead-link reports by members: one open report per member and link.';
alter table internal.referral_reports enable row level security;
create policy referral_reports_admin on internal.referral_reports for select to app_admin using (true);
grant select on internal.referral_reports to app_admin;

create table internal.referral_strikes (
    id       bigint generated always as identity primary key,
    user_id  uuid not null references internal.users (id) on delete cascade,
    reason   text not null check (length(trim(reason)) between 1 and 500),
    given_by text not null,
    at       timestamptz not null default now()
);
create index referral_strikes_user_idx on internal.referral_strikes (user_id, at);
comment on table internal.referral_strikes is 'Rule violations given by admins; each counts for strike_decay_days.';
alter table internal.referral_strikes enable row level security;  -- no policy: definer functions only

create table internal.referral_bans (
    user_id  uuid primary key references internal.users (id) on delete cascade,
    reason   text not null,
    given_by text not null,
    at       timestamptz not null default now()
);
comment on table internal.referral_bans is 'Members banned from sharing referral links.';
alter table internal.referral_bans enable row level security;  -- no policy: definer functions only

-- Moderation actions (account events stay in internal.audit_log).
create table internal.referral_audit (
    id      bigint generated always as identity primary key,
    at      timestamptz not null default now(),
    actor   text not null,
    action  text not null check (action in ('auto_suspended', 'reverified', 'cleared', 'suspended', 'deleted',
                                            'strike', 'banned', 'unbanned')),
    link_id uuid,
    user_id uuid,
    details jsonb
);
create index referral_audit_at_idx on internal.referral_audit (at);
comment on table internal.referral_audit is 'Every moderation action on referral links and members: who, what, when.';
alter table internal.referral_audit enable row level security;
create policy referral_audit_admin on internal.referral_audit for select to app_admin using (true);
grant select on internal.referral_audit to app_admin;

create view api.referral_audit with (security_invoker = true) as
    select id, at, actor, action, link_id, user_id, details from internal.referral_audit;
comment on view api.referral_audit is 'Admins only: moderation actions on referral links and members.';
grant select on api.referral_audit to app_admin;

create function internal.referral_log(action text, link_id uuid, user_id uuid, details jsonb default null) returns void
language sql
set search_path = pg_catalog, internal
as $$ insert into internal.referral_audit (actor, action, link_id, user_id, details)
      values (case when action = 'auto_suspended' then 'system' else internal.actor() end, action, link_id, user_id, details) $$;
comment on function internal.referral_log(text, uuid, uuid, jsonb) is 'Record a moderation action in internal.referral_audit.';
revoke execute on function internal.referral_log(text, uuid, uuid, jsonb) from public;

-- Standing: disabled accounts, bans, and strike_threshold strikes within strike_decay_days.
create or replace function internal.referral_member_blocked(member uuid) returns text
language sql stable
set search_path = pg_catalog, internal
as $$
    select case
        when u.disabled_at is not null then 'disabled'
        when exists (select 1 from internal.referral_bans b where b.user_id = member) then 'banned'
        when (select count(*) from internal.referral_strikes s
              where s.user_id = member
                and s.at > now() - make_interval(days => coalesce(internal.referral_setting('strike_decay_days'), 36500)))
             >= internal.referral_setting('strike_threshold') then 'strikes'
    end
    from internal.users u where u.id = member
$$;

-- The rotation's eligibility with bans and strikes, inline (set-based: no per-link function call).
create or replace function internal.referral_eligible(offer uuid, caller uuid) returns setof api.referral_links
language sql stable
as $$
    select l.* from api.referral_links l
    join api.offers o on o.id = l.offer_id
    join internal.users u on u.id = l.owner_id
    cross join (select st.value as conf from internal.settings st where st.name = 'referral') s
    where l.offer_id = offer and o.status = 'active' and o.referrals_accepted
      and l.status = 'active' and not l.paused
      and (l.capped_until is null or l.capped_until <= current_date)
      and l.owner_id is distinct from caller
      and u.disabled_at is null
      and not exists (select 1 from internal.referral_bans b where b.user_id = l.owner_id)
      and (s.conf ->> 'strike_threshold' is null
           or (select count(*) from internal.referral_strikes k
               where k.user_id = l.owner_id
                 and k.at > now() - make_interval(days => coalesce((s.conf ->> 'strike_decay_days')::integer, 36500)))
              < (s.conf ->> 'strike_threshold')::integer)
$$;

-- --- reports -----------------------------------------------------------------------------------------------

create function internal.require_referral_member() returns uuid
language plpgsql stable
set search_path = pg_catalog, internal
as $$
declare
    member internal.users;
    min_age integer := coalesce(internal.referral_setting('min_account_age_days'), 0);
begin
    select * into member from internal.users u where u.id = auth.uid();
    if not found or auth.role() not in ('app_user', 'app_admin') then
        raise exception using errcode = '42501', message = 'sign in to report or manage referral links';
    end if;
    if internal.referral_member_blocked(member.id) is not null then
        raise exception using errcode = '42501', message = 'this account may not use referral links';
    end if;
    if member.created_at > now() - make_interval(days => min_age) then
        raise exception using errcode = '42501',
            message = format('accounts can report referral links once they are %s days old', min_age);
    end if;
    return member.id;
end
$$;
comment on function internal.require_referral_member() is 'The signed-in member, eligible by standing and account age; raises 42501 otherwise.';
revoke execute on function internal.require_referral_member() from public;

-- A report counts once per member and link; K reports from distinct members within the window suspend
-- the link. A member files at most reports_per_day reports per day, so nobody can report-bomb.
create function api.report_referral_link(link_id uuid, reason text, note text default null) returns json
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    member uuid := internal.require_referral_member();
    link api.referral_links;
    per_day integer := internal.referral_setting('reports_per_day');
    threshold integer := internal.referral_setting('report_threshold');
    window_days integer := coalesce(internal.referral_setting('report_window_days'), 36500);
    report_id bigint;
    reporters integer;
    suspended boolean := false;
begin
    if reason is null or reason not in ('expired', 'invalid', 'not_referral', 'spam') then
        raise exception using errcode = '22023', message = 'reason must be expired, invalid, not_referral or spam';
    end if;
    if length(note) > 500 then
        raise exception using errcode = '22023', message = 'note is too long: at most 500 characters';
    end if;
    -- the row lock serialises reports on one link (the threshold is counted once)
    select * into link from api.referral_links l where l.id = report_referral_link.link_id for update;
    if not found then
        raise exception using errcode = '22023', message = 'no referral link has this id';
    end if;
    if link.owner_id = member then
        raise exception using errcode = '22023', message = 'you cannot report your own link';
    end if;
    perform pg_advisory_xact_lock(1415, hashtext(member::text));
    if per_day is not null and (select count(*) from internal.referral_reports r
                                where r.reporter_id = member and r.at > now() - interval '1 day') >= per_day then
        perform internal.referral_refusal(429, 'RS429', 'too many reports',
            format('a member files at most %s reports a day', per_day), '{"Retry-After": "3600"}');
    end if;
    insert into internal.referral_reports (link_id, reporter_id, reason, note)
    values (link.id, member, reason, nullif(trim(note), ''))
    on conflict do nothing
    returning id into report_id;
    if report_id is null then
        raise exception using errcode = '23505', message = 'you already reported this link';
    end if;
    select count(distinct r.reporter_id) into reporters from internal.referral_reports r
    where r.link_id = link.id and r.resolved_at is null and r.at > now() - make_interval(days => window_days);
    update api.referral_links l set open_reports = l.open_reports + 1 where l.id = link.id;
    if threshold is not null and reporters >= threshold and link.status = 'active' then
        update api.referral_links l set status = 'suspended', suspended_by = 'reports' where l.id = link.id;
        perform internal.referral_log('auto_suspended', link.id, link.owner_id, jsonb_build_object('reporters', reporters));
        suspended := true;
    end if;
    return json_build_object('report_id', report_id, 'link_suspended', suspended);
end
$$;
comment on function api.report_referral_link(uuid, text, text) is
    'Members: report a link you were served as expired, invalid, not_referral or spam (once per link; at most reports_per_day a day). report_threshold reports from distinct members suspend it.';
revoke execute on function api.report_referral_link(uuid, text, text) from public;
grant execute on function api.report_referral_link(uuid, text, text) to app_user, app_admin;

create function internal.resolve_referral_reports(link uuid, how text) returns void
language sql
set search_path = pg_catalog, internal, api
as $$
    update internal.referral_reports r set resolved_at = now(), resolution = how
    where r.link_id = link and r.resolved_at is null;
    update api.referral_links l set open_reports = 0 where l.id = link;
$$;
revoke execute on function internal.resolve_referral_reports(uuid, text) from public;

-- The owner says the link works again: a link suspended by reports (or expired with an offer that is
-- active again) returns to rotation and its open reports are resolved. Admin suspensions stay.
create function api.reverify_referral_link(link_id uuid) returns api.referral_links
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    member uuid := internal.require_referral_member();
    link api.referral_links;
begin
    select * into link from api.referral_links l where l.id = reverify_referral_link.link_id and l.owner_id = member for update;
    if not found then
        raise exception using errcode = '22023', message = 'you have no referral link with this id';
    end if;
    if link.suspended_by in ('admin', 'strikes') then
        raise exception using errcode = '42501', message = 'an admin suspended this link: it returns when an admin clears it';
    end if;
    if link.status = 'expired' and not exists (select 1 from api.offers o where o.id = link.offer_id and o.status = 'active') then
        raise exception using errcode = '22023', message = 'this link''s offer has ended';
    end if;
    perform internal.resolve_referral_reports(link.id, 'reverified');
    update api.referral_links l set status = 'active', suspended_by = null, verified_at = now()
    where l.id = link.id returning * into link;
    perform internal.referral_log('reverified', link.id, member);
    return link;
end
$$;
comment on function api.reverify_referral_link(uuid) is
    'Owners: confirm your link works; a link suspended by reports (or expired) returns to rotation, its open reports resolved.';
revoke execute on function api.reverify_referral_link(uuid) from public;
grant execute on function api.reverify_referral_link(uuid) to app_user, app_admin;

-- --- admin RPCs --------------------------------------------------------------------------------------------

create function internal.require_referral_admin() returns void
language plpgsql stable
set search_path = pg_catalog, auth
as $$
begin
    if auth.role() is distinct from 'app_admin' then
        raise exception using errcode = '42501', message = 'only admins moderate referral links';
    end if;
end
$$;
revoke execute on function internal.require_referral_admin() from public;

create function internal.referral_link_for_admin(link uuid) returns api.referral_links
language plpgsql
set search_path = pg_catalog, internal, api
as $$
declare
    found_link api.referral_links;
begin
    perform internal.require_referral_admin();
    select * into found_link from api.referral_links l where l.id = link for update;
    if not found then
        raise exception using errcode = '22023', message = 'no referral link has this id';
    end if;
    return found_link;
end
$$;
revoke execute on function internal.referral_link_for_admin(uuid) from public;

create function api.referral_moderation_queue()
returns table (link_id uuid, offer_id uuid, offer_title text, owner_id uuid, owner_email text, url text,
               status text, suspended_by text, open_reports integer, reasons jsonb, last_reported_at timestamptz,
               owner_strikes bigint)
language plpgsql stable security definer
set search_path = pg_catalog, internal, api
as $$
begin
    perform internal.require_referral_admin();
    return query
    select l.id, l.offer_id, o.title, l.owner_id, u.email, l.url, l.status, l.suspended_by, l.open_reports,
           coalesce((select jsonb_object_agg(x.reason, x.n) from
                       (select r.reason, count(*) as n from internal.referral_reports r
                        where r.link_id = l.id and r.resolved_at is null group by r.reason) x), '{}'),
           (select max(r.at) from internal.referral_reports r where r.link_id = l.id and r.resolved_at is null),
           (select count(*) from internal.referral_strikes s where s.user_id = l.owner_id
              and s.at > now() - make_interval(days => coalesce(internal.referral_setting('strike_decay_days'), 36500)))
    from api.referral_links l
    join api.offers o on o.id = l.offer_id
    join internal.users u on u.id = l.owner_id
    where l.open_reports > 0 or l.status = 'suspended'
    order by 11 desc nulls last, l.updated_at desc;
end
$$;
comment on function api.referral_moderation_queue() is 'Admins: reported or suspended links, newest report first, with reasons and the owner''s strikes.';
revoke execute on function api.referral_moderation_queue() from public;
grant execute on function api.referral_moderation_queue() to app_admin;

create function api.clear_referral_link(link_id uuid, note text default null) returns api.referral_links
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    link api.referral_links := internal.referral_link_for_admin(clear_referral_link.link_id);
begin
    perform internal.resolve_referral_reports(link.id, 'cleared');
    update api.referral_links l set status = case when l.status = 'suspended' then 'active' else l.status end,
        suspended_by = null where l.id = link.id returning * into link;
    perform internal.referral_log('cleared', link.id, link.owner_id, jsonb_build_object('note', note));
    return link;
end
$$;
comment on function api.clear_referral_link(uuid, text) is 'Admins: resolve a link''s reports and return it to rotation.';
revoke execute on function api.clear_referral_link(uuid, text) from public;
grant execute on function api.clear_referral_link(uuid, text) to app_admin;

create function api.suspend_referral_link(link_id uuid, reason text) returns api.referral_links
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    link api.referral_links := internal.referral_link_for_admin(suspend_referral_link.link_id);
begin
    update api.referral_links l set status = 'suspended', suspended_by = 'admin' where l.id = link.id returning * into link;
    perform internal.referral_log('suspended', link.id, link.owner_id, jsonb_build_object('reason', reason));
    return link;
end
$$;
comment on function api.suspend_referral_link(uuid, text) is 'Admins: take a link out of rotation until an admin clears it.';
revoke execute on function api.suspend_referral_link(uuid, text) from public;
grant execute on function api.suspend_referral_link(uuid, text) to app_admin;

create function api.delete_referral_link(link_id uuid, reason text) returns void
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    link api.referral_links := internal.referral_link_for_admin(delete_referral_link.link_id);
begin
    perform internal.referral_log('deleted', link.id, link.owner_id,
                                  jsonb_build_object('reason', reason, 'url', link.url, 'offer_id', link.offer_id));
    delete from api.referral_links l where l.id = link.id;
end
$$;
comment on function api.delete_referral_link(uuid, text) is 'Admins: delete a link (the audit keeps its URL).';
revoke execute on function api.delete_referral_link(uuid, text) from public;
grant execute on function api.delete_referral_link(uuid, text) to app_admin;

create function internal.referral_member_for_admin(member uuid) returns uuid
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    perform internal.require_referral_admin();
    if not exists (select 1 from internal.users u where u.id = member) then
        raise exception using errcode = '22023', message = 'no account has this id';
    end if;
    return member;
end
$$;
revoke execute on function internal.referral_member_for_admin(uuid) from public;

-- At strike_threshold live strikes the member's links leave rotation and submission is blocked
-- (internal.referral_member_blocked); strikes stop counting after strike_decay_days.
create function api.strike_referral_member(user_id uuid, reason text) returns json
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    member uuid := internal.referral_member_for_admin(strike_referral_member.user_id);
begin
    if reason is null or length(trim(reason)) not between 1 and 500 then
        raise exception using errcode = '22023', message = 'give a reason (1 to 500 characters)';
    end if;
    insert into internal.referral_strikes (user_id, reason, given_by) values (member, trim(reason), internal.actor());
    perform internal.referral_log('strike', null, member, jsonb_build_object('reason', reason));
    return json_build_object('user_id', member,
        'strikes', (select count(*) from internal.referral_strikes s where s.user_id = member
                    and s.at > now() - make_interval(days => coalesce(internal.referral_setting('strike_decay_days'), 36500))),
        'blocked', internal.referral_member_blocked(member) is not null);
end
$$;
comment on function api.strike_referral_member(uuid, text) is
    'Admins: give a member a strike; at strike_threshold live strikes their links leave rotation and they cannot submit.';
revoke execute on function api.strike_referral_member(uuid, text) from public;
grant execute on function api.strike_referral_member(uuid, text) to app_admin;

create function api.ban_referral_member(user_id uuid, reason text, banned boolean default true) returns void
language plpgsql security definer
set search_path = pg_catalog, internal, api
as $$
declare
    member uuid := internal.referral_member_for_admin(ban_referral_member.user_id);
begin
    if banned then
        insert into internal.referral_bans (user_id, reason, given_by) values (member, coalesce(reason, ''), internal.actor())
        on conflict on constraint referral_bans_pkey do update set reason = excluded.reason, given_by = excluded.given_by, at = now();
        perform internal.referral_log('banned', null, member, jsonb_build_object('reason', reason));
    else
        delete from internal.referral_bans b where b.user_id = member;
        perform internal.referral_log('unbanned', null, member, jsonb_build_object('reason', reason));
    end if;
end
$$;
comment on function api.ban_referral_member(uuid, text, boolean) is
    'Admins: ban a member from referral links (banned=false lifts the ban).';
revoke execute on function api.ban_referral_member(uuid, text, boolean) from public;
grant execute on function api.ban_referral_member(uuid, text, boolean) to app_admin;

-- --- jobs --------------------------------------------------------------------------------------------------

create function internal.referral_reset_caps(as_of date) returns integer
language plpgsql
set search_path = pg_catalog, api
as $$
declare
    n integer;
begin
    update api.referral_links set capped_until = null where capped_until <= as_of;
    get diagnostics n = row_count;
    return n;
end
$$;
comment on function internal.referral_reset_caps(date) is 'Job: links whose cap period ended (e.g. on 1 January) are no longer marked capped.';
revoke execute on function internal.referral_reset_caps(date) from public;

create function internal.referral_expire_links(as_of timestamptz) returns integer
language plpgsql
set search_path = pg_catalog, api
as $$
declare
    n integer;
begin
    update api.referral_links l set status = 'expired', suspended_by = null
    from api.offers o
    where o.id = l.offer_id and l.status <> 'expired'
      and (o.status in ('expired', 'archived') or o.expires_on < as_of::date);
    get diagnostics n = row_count;
    return n;
end
$$;
comment on function internal.referral_expire_links(timestamptz) is 'Job: links of ended offers leave rotation (status expired).';
revoke execute on function internal.referral_expire_links(timestamptz) from public;

create function internal.referral_purge_visitors(as_of timestamptz) returns integer
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    n integer;
    days integer := internal.referral_setting('visitor_key_days');
begin
    if days is null then
        return 0;
    end if;
    update internal.referral_clicks set visitor = null where visitor is not null and at < as_of - make_interval(days => days);
    get diagnostics n = row_count;
    return n;
end
$$;
comment on function internal.referral_purge_visitors(timestamptz) is 'Job: forget visitor pseudonyms of clicks older than visitor_key_days (the counts stay).';
revoke execute on function internal.referral_purge_visitors(timestamptz) from public;

create table internal.referral_daily (
    day             date not null,
    offer_id        uuid not null,
    link_id         uuid not null,
    serves          bigint not null,
    unique_visitors bigint not null,
    primary key (day, offer_id, link_id)
);
comment on table internal.referral_daily is 'Serves and counted (unique) serves per UTC day, offer and link; kept by internal.referral_refresh_stats.';
alter table internal.referral_daily enable row level security;
create policy referral_daily_admin on internal.referral_daily for select to app_admin using (true);
grant select on internal.referral_daily to app_admin;

-- Recomputes the days from the day before the newest rolled-up day (all days the first time) up to as_of.
create function internal.referral_refresh_stats(as_of timestamptz) returns integer
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    from_day date;
    n integer;
begin
    perform pg_advisory_xact_lock(1416, 0);
    from_day := coalesce((select max(day) - 1 from internal.referral_daily), '-infinity'::date);
    delete from internal.referral_daily where day >= from_day;
    insert into internal.referral_daily (day, offer_id, link_id, serves, unique_visitors)
    select internal.utc_day(c.at), c.offer_id, c.link_id, count(*), count(*) filter (where c.counted)
    from internal.referral_clicks c
    where c.at >= from_day and c.at < as_of and c.link_id is not null
    group by 1, 2, 3;
    get diagnostics n = row_count;
    return n;
end
$$;
comment on function internal.referral_refresh_stats(timestamptz) is 'Job: refresh the referral rollups (internal.referral_daily) up to as_of; returns rows written.';
revoke execute on function internal.referral_refresh_stats(timestamptz) from public;

select cron.schedule('referral-reset-caps', '5 0 * * *', 'select internal.referral_reset_caps(current_date)');
select cron.schedule('referral-expire-links', '10 0 * * *', 'select internal.referral_expire_links(now())');
select cron.schedule('referral-purge-visitors', '20 3 * * *', 'select internal.referral_purge_visitors(now())');
select cron.schedule('referral-refresh-stats', '*/15 * * * *', 'select internal.referral_refresh_stats(now())');

-- --- analytics ---------------------------------------------------------------------------------------------

create view api.referral_offer_stats with (security_invoker = true) as
    select o.id as offer_id, o.title, o.institution, count(l.id) as links,
           count(l.id) filter (where l.status = 'active' and not l.paused
                               and (l.capped_until is null or l.capped_until <= current_date)) as links_active,
           coalesce(sum(l.times_served), 0) as serves, coalesce(sum(l.unique_visitors), 0) as unique_visitors,
           coalesce(sum(l.open_reports), 0) as open_reports
    from api.offers o join api.referral_links l on l.offer_id = o.id
    group by o.id, o.title, o.institution;
comment on view api.referral_offer_stats is 'Admins: links, serves, unique visitors and open reports per offer (all time).';
grant select on api.referral_offer_stats to app_admin;

create view api.referral_daily_stats with (security_invoker = true) as
    select d.day, d.offer_id, d.link_id, d.serves, d.unique_visitors,
           round(d.unique_visitors::numeric / nullif(sum(d.unique_visitors) over (partition by d.day, d.offer_id), 0), 4)
               as rotation_share
    from internal.referral_daily d;
comment on view api.referral_daily_stats is
    'Admins: serves and unique visitors per UTC day and link, with the link''s share of its offer''s rotation that day (rollup).';
grant select on api.referral_daily_stats to app_admin;

create view api.referral_reports with (security_invoker = true) as
    select id, link_id, reporter_id, reason, note, at, resolved_at, resolution from internal.referral_reports;
comment on view api.referral_reports is 'Admins: every dead-link report.';
grant select on api.referral_reports to app_admin;

-- The dashboard's referral panel (issue 15 includes it under the key "referrals"): top offers by referral
-- traffic over the last 30 UTC days (rollups) and the moderation queue's size. SECURITY DEFINER (it reads
-- the private rollups) and executable by app_admin only: its caller (api.dashboard) is admins only.
create function internal.referral_dashboard() returns json
language sql stable security definer
set search_path = pg_catalog, internal, api
as $$
    select json_build_object(
        'top_offers', coalesce((
            select json_agg(json_build_object('offer_id', t.offer_id, 'title', t.title, 'serves', t.serves,
                                              'unique_visitors', t.unique_visitors) order by t.serves desc, t.title)
            from (select d.offer_id, o.title, sum(d.serves) as serves, sum(d.unique_visitors) as unique_visitors
                  from internal.referral_daily d join api.offers o on o.id = d.offer_id
                  where d.day > internal.utc_day(now()) - 30
                  group by d.offer_id, o.title order by serves desc, o.title limit 10) t), '[]'),
        'moderation_queue', (select count(*) from api.referral_links l where l.open_reports > 0 or l.status = 'suspended'),
        'links', (select count(*) from api.referral_links),
        'links_suspended', (select count(*) from api.referral_links l where l.status = 'suspended'))
$$;
comment on function internal.referral_dashboard() is
    'Dashboard panel: top offers by referral serves (30 days, rollups), moderation queue size, link counts.';
revoke execute on function internal.referral_dashboard() from public;
grant execute on function internal.referral_dashboard() to app_admin;
