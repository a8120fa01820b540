-- Operational dashboard: daily rollups of analytics events refreshed by pg_cron, and one admin-only
-- function that returns every panel as one JSON document (one round trip per page refresh).
--
-- Why functions and not security_invoker views: the panels read cron.job, cron.job_run_details and
-- pg_stat_database, on which API roles have (and should have) no rights, and the private rollup tables.
-- So the API objects are SECURITY DEFINER functions with a pinned search_path, executable by app_admin
-- only, that also check auth.role() themselves because they bypass RLS.
--
-- Days are UTC days, whatever the session's time zone, so the rollups do not depend on who refreshed them.

create table internal.offer_view_daily (
    day      date not null,
    offer_id uuid not null,
    views    bigint not null check (views > 0),
    primary key (day, offer_id)
);
comment on table internal.offer_view_daily is 'offer_view events per UTC day and offer; kept by internal.refresh_rollups.';
alter table internal.offer_view_daily enable row level security;  -- no policy: definer functions only

create table internal.event_daily (
    day        date not null,
    event_type text not null,
    events     bigint not null check (events > 0),
    primary key (day, event_type)
);
comment on table internal.event_daily is 'Analytics events per UTC day and type; kept by internal.refresh_rollups.';
alter table internal.event_daily enable row level security;  -- no policy: definer functions only

-- One row: how far the rollups reach. Null until the first refresh, which then rolls up all history.
create table internal.rollup_state (
    singleton         boolean primary key default true check (singleton),
    last_rolled_up_to timestamptz
);
comment on table internal.rollup_state is 'The reference time of the latest rollup refresh (one row).';
alter table internal.rollup_state enable row level security;  -- no policy: definer functions only
insert into internal.rollup_state default values;

create function internal.utc_day(t timestamptz) returns date
language sql immutable strict
as $$ select (t at time zone 'UTC')::date $$;
comment on function internal.utc_day(timestamptz) is 'The UTC calendar day of a timestamp.';
revoke execute on function internal.utc_day(timestamptz) from public;

-- Recomputes every UTC day from the day before the previous refresh (or from the first event, the first
-- time) up to as_of, counting events created before as_of. Normally that is the last two days; after a
-- gap in the schedule it catches up. Idempotent: the same as_of gives the same rows. Returns the number
-- of rollup rows written.
create function internal.refresh_rollups(as_of timestamptz) returns integer
language plpgsql
set search_path = pg_catalog, internal, api
as $$
declare
    previous timestamptz;
    from_day date;
    window_start timestamptz;
    written integer;
    n integer;
begin
    -- the row lock serialises concurrent refreshes (cron and a manual call)
    select last_rolled_up_to into previous from internal.rollup_state for update;
    if previous is null then
        from_day := (select internal.utc_day(min(created_at)) from api.analytics_events);
        from_day := coalesce(from_day, internal.utc_day(as_of));
    else
        from_day := least(internal.utc_day(previous), internal.utc_day(as_of)) - 1;
    end if;
    window_start := from_day::timestamp at time zone 'UTC';

    delete from internal.offer_view_daily where day >= from_day;
    delete from internal.event_daily where day >= from_day;

    -- both statements use idx_events_time for the window
    insert into internal.offer_view_daily (day, offer_id, views)
    select internal.utc_day(created_at), offer_id, count(*)
    from api.analytics_events
    where event_type = 'offer_view' and offer_id is not null
      and created_at >= window_start and created_at < as_of
    group by 1, 2;
    get diagnostics written = row_count;

    insert into internal.event_daily (day, event_type, events)
    select internal.utc_day(created_at), event_type, count(*)
    from api.analytics_events
    where created_at >= window_start and created_at < as_of
    group by 1, 2;
    get diagnostics n = row_count;

    update internal.rollup_state set last_rolled_up_to = as_of;
    return written + n;
end
$$;
comment on function internal.refresh_rollups(timestamptz) is
    'Recompute the daily event rollups from the day before the previous refresh up to as_of (idempotent).';
revoke execute on function internal.refresh_rollups(timestamptz) from public;

-- Events older than this are final in the rollups: no later refresh recomputes their day, so the retention
-- job may delete them. It is the start of the window the next refresh will recompute (not the last as_of:
-- deleting events inside that window would lower the counts of days already shown). -infinity before
-- the first refresh, when nothing is rolled up yet.
create function internal.rollup_watermark() returns timestamptz
language sql stable
set search_path = pg_catalog, internal
as $$
    select coalesce((internal.utc_day(last_rolled_up_to) - 1)::timestamp at time zone 'UTC', '-infinity')
    from internal.rollup_state
$$;
comment on function internal.rollup_watermark() is
    'Events created before this time are final in the rollups (safe for retention to delete).';
revoke execute on function internal.rollup_watermark() from public;

select cron.schedule('refresh-rollups', '*/5 * * * *', 'select internal.refresh_rollups(now())');

-- Refuses every caller but an admin. The grants already do so; definer functions check again.
create function internal.require_admin() returns void
language plpgsql stable
set search_path = pg_catalog, auth
as $$
begin
    if auth.role() is distinct from 'app_admin' then
        raise exception using errcode = '42501', message = 'the dashboard is for admins only';
    end if;
end
$$;
comment on function internal.require_admin() is 'Raise 42501 unless the request is an admin''s.';
revoke execute on function internal.require_admin() from public;

create function api.dashboard_events_per_day(days integer default 30) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, internal
as $$
declare
    today date := internal.utc_day(now());
begin
    perform internal.require_admin();
    if days is null or days < 1 or days > 366 then
        raise exception using errcode = '22023', message = 'days must be between 1 and 366';
    end if;
    -- every day of the range, zero where nothing happened, so a chart has no gaps
    return (
        select coalesce(jsonb_agg(jsonb_build_object(
                   'day', d.day,
                   'total', coalesce(e.total, 0),
                   'by_type', coalesce(e.by_type, '{}'::jsonb)) order by d.day), '[]'::jsonb)
        from (select generate_series(today - (days - 1), today, interval '1 day')::date as day) d
        left join (
            select day, sum(events) as total, jsonb_object_agg(event_type, events) as by_type
            from internal.event_daily where day > today - days
            group by day
        ) e using (day)
    );
end
$$;
comment on function api.dashboard_events_per_day(integer) is
    'Admins: analytics events per UTC day over the last `days` days (1-366), from the rollups.';
revoke execute on function api.dashboard_events_per_day(integer) from public;
grant execute on function api.dashboard_events_per_day(integer) to app_admin;

-- Top offers by views since a UTC day, from the rollup.
create function internal.most_viewed_since(since date, top integer) returns jsonb
language sql stable
set search_path = pg_catalog, internal, api
as $$
    select coalesce(jsonb_agg(jsonb_build_object('offer_id', v.offer_id, 'title', o.title,
                                                 'institution', o.institution, 'views', v.views)
                              order by v.views desc, o.title), '[]'::jsonb)
    from (select offer_id, sum(views) as views from internal.offer_view_daily
          where day >= since group by offer_id order by 2 desc limit top) v
    join api.offers o on o.id = v.offer_id
$$;
comment on function internal.most_viewed_since(date, integer) is 'The most viewed offers since a UTC day (rollup).';
revoke execute on function internal.most_viewed_since(date, integer) from public;

create function api.dashboard() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, internal, api, cron
as $$
declare
    today date := internal.utc_day(now());
    doc jsonb;
    backups jsonb := null;
begin
    perform internal.require_admin();

    doc := jsonb_build_object(
        'generated_at', now(),
        'rollups_as_of', (select last_rolled_up_to from internal.rollup_state),
        'offers', jsonb_build_object(
            'total', (select count(*) from api.offers),
            'by_status', (select coalesce(jsonb_object_agg(status, n), '{}') from
                          (select status, count(*) as n from api.offers group by status) s),
            'by_type', (select coalesce(jsonb_object_agg(offer_type, n), '{}') from
                        (select offer_type, count(*) as n from api.offers group by offer_type) t)),
        -- idx_offers_active_expiry
        'expiring_soon', (select coalesce(jsonb_agg(jsonb_build_object(
                              'id', id, 'title', title, 'institution', institution, 'offer_type', offer_type,
                              'expires_on', expires_on, 'days_left', expires_on - current_date)
                              order by expires_on, title), '[]')
                          from api.offers
                          where status = 'active' and expires_on between current_date and current_date + 7),
        'most_viewed', jsonb_build_object(
            -- 24 h from raw events: bounded to one day by idx_events_time, and exact to the second
            '24h', (select coalesce(jsonb_agg(jsonb_build_object('offer_id', v.offer_id, 'title', o.title,
                                                                'institution', o.institution, 'views', v.views)
                                              order by v.views desc, o.title), '[]')
                    from (select offer_id, count(*) as views from api.analytics_events
                          where created_at >= now() - interval '24 hours' and event_type = 'offer_view'
                            and offer_id is not null
                          group by offer_id order by 2 desc limit 10) v
                    join api.offers o on o.id = v.offer_id),
            '7d', internal.most_viewed_since(today - 6, 10),
            '30d', internal.most_viewed_since(today - 29, 10)),
        'events_per_day', api.dashboard_events_per_day(30),
        'database', (
            select jsonb_build_object(
                'name', d.datname,
                'size_bytes', pg_database_size(d.datid),
                'connections', d.numbackends,
                'max_connections', current_setting('max_connections')::integer,
                'commits', d.xact_commit,
                'rollbacks', d.xact_rollback,
                'cache_hit_ratio', case when d.blks_hit + d.blks_read > 0
                                        then round(d.blks_hit::numeric / (d.blks_hit + d.blks_read), 4) end,
                'stats_reset', d.stats_reset)
            from pg_stat_database d where d.datname = current_database()),
        'slowest_statements', (
            select coalesce(jsonb_agg(jsonb_build_object(
                       'query', left(q.query, 300), 'calls', q.calls, 'rows', q.rows,
                       'mean_ms', round(q.mean_exec_time::numeric, 3),
                       'total_ms', round(q.total_exec_time::numeric, 1))
                       order by q.mean_exec_time desc), '[]')
            from (select * from api.query_stats order by mean_exec_time desc limit 5) q),
        'jobs', (
            select coalesce(jsonb_agg(jsonb_build_object(
                       'jobid', j.jobid, 'name', j.jobname, 'schedule', j.schedule, 'command', j.command,
                       'active', j.active,
                       'last_run', case when r.runid is not null then jsonb_build_object(
                           'status', r.status, 'start_time', r.start_time, 'end_time', r.end_time,
                           'duration_ms', round(extract(epoch from r.end_time - r.start_time)::numeric * 1000, 1),
                           'message', left(r.return_message, 300)) end)
                       order by j.jobname), '[]')
            from cron.job j
            -- the newest run of each job, found backwards along the runid key
            left join lateral (select * from cron.job_run_details x where x.jobid = j.jobid
                               order by x.runid desc limit 1) r on true)
    );

    -- backup_status comes from 009; checked at run time so this panel degrades instead of failing
    if to_regclass('api.backup_status') is not null then
        select jsonb_build_object(
                   'latest', (select to_jsonb(b) from api.backup_status b order by finished_at desc limit 1),
                   'latest_verified', (select max(finished_at) from api.backup_status where ok and verified))
          into backups;
    end if;
    return doc || jsonb_build_object('backup', backups);
end
$$;
comment on function api.dashboard() is
    'Admins: every panel of the operational dashboard as one JSON document (offers, expiring offers, most '
    'viewed, events per day, database health, slowest statements, cron jobs, latest backup). Most viewed over '
    '24 h counts raw events; 7 d and 30 d are whole UTC days from the rollups (refreshed every 5 minutes).';
revoke execute on function api.dashboard() from public;
grant execute on function api.dashboard() to app_admin;
