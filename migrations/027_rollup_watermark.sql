-- Rollups count back-dated events (issue 15). Until now a refresh recomputed only the UTC days from the day
-- before its previous run, by event time: an event inserted today with a created_at five days back was never
-- counted. Now each event carries the id of the transaction that inserted it, and the refresh keeps an
-- insertion watermark: every event whose inserting transaction is below it has been counted.
--
-- Why a transaction id and not a sequence: a sequence value is taken when the row is written but becomes
-- visible at commit, so a refresh that reads max(id) while an older insert is still open would step over
-- it for good. Transaction ids below the oldest transaction still running (the snapshot's xip list) are all
-- finished: counting "inserted_xid < horizon" never misses a row that commits later. xid8 is 64 bits (epoch
-- included): no wraparound.
--
-- Partitioning (issue 16): a column default and a plain btree index carry over to every partition of a
-- partitioned table in PostgreSQL 15 (an identity column would not: identity on partitioned tables needs 17),
-- so this design needs no change when api.analytics_events becomes partitioned.
--
-- The refresh, in one transaction:
--   1. days inside the usual window (from the day before the previous run) are recomputed from raw events,
--      as before (they may still receive events created "now");
--   2. older days get increments: the events inserted since the watermark, counted once and added;
--   3. the watermark moves to the horizon.
-- An event inserted after the refresh by the same transaction that ran it is not counted (nothing does that).

alter table api.analytics_events add column inserted_xid xid8 not null default pg_current_xact_id();
comment on column api.analytics_events.inserted_xid is
    'The transaction that inserted the event: the rollups'' insertion watermark (internal.refresh_rollups).';
create index idx_events_inserted_xid on api.analytics_events (inserted_xid);

alter table internal.rollup_state add column counted_before xid8;
comment on column internal.rollup_state.counted_before is
    'Insertion watermark: every event inserted by a transaction below this id is counted in the rollups.';

-- Every event already in the table was written before this migration's transaction (the ALTER above waited
-- for the others) and has this transaction's id as its default: the refreshes so far counted them by time,
-- so the watermark starts just after it. Events back-dated before today were missed by the old refresh:
-- `referral-service rollups rebuild` recounts them.
update internal.rollup_state
set counted_before = (pg_current_xact_id()::text::bigint + 1)::text::xid8
where last_rolled_up_to is not null;

-- The oldest transaction another session still runs, else the next id to be given out; our own transaction
-- counts as finished (its rows are visible to us, and a rollback undoes the refresh with them). The snapshot's
-- xmax can be our own id (nothing later has completed): then the bound is just past it.
create function internal.insertion_horizon() returns xid8
language sql volatile
set search_path = pg_catalog
as $$
    select case when h = pg_current_xact_id_if_assigned() then (h::text::bigint + 1)::text::xid8 else h end
    from (select coalesce((select min(x) from pg_snapshot_xip(s) x), pg_snapshot_xmax(s)) as h
          from pg_current_snapshot() s) b
$$;
comment on function internal.insertion_horizon() is
    'Transactions below this id are finished (or are the caller''s): safe to count as inserted.';
revoke execute on function internal.insertion_horizon() from public;

create or replace function internal.refresh_rollups(as_of timestamptz) returns integer
language plpgsql
set search_path = pg_catalog, internal, api
as $$
declare
    horizon xid8 := internal.insertion_horizon();  -- before any write of ours
    previous timestamptz;
    counted xid8;
    from_day date;
    window_start timestamptz;
    written integer := 0;
    n integer;
begin
    -- the row lock serialises concurrent refreshes (cron, a manual call, a rebuild)
    select last_rolled_up_to, counted_before into previous, counted from internal.rollup_state for update;
    -- a refresh that took a later horizon committed while we waited: everything below it is finished
    if counted is not null and counted > horizon then
        horizon := counted;
    end if;
    if previous is null or counted is null then
        from_day := coalesce((select internal.utc_day(min(created_at)) from api.analytics_events),
                             internal.utc_day(as_of));
        counted := null;
    else
        from_day := least(internal.utc_day(previous), internal.utc_day(as_of)) - 1;
    end if;
    window_start := from_day::timestamp at time zone 'UTC';

    -- 1. the window, recomputed (idx_events_time)
    delete from internal.offer_view_daily where day >= from_day;
    delete from internal.event_daily where day >= from_day;
    insert into internal.offer_view_daily (day, offer_id, views)
    select internal.utc_day(created_at), offer_id, count(*)
    from api.analytics_events
    where event_type = 'offer_view' and offer_id is not null
      and created_at >= window_start and created_at < as_of and inserted_xid < horizon
    group by 1, 2;
    get diagnostics n = row_count;
    written := written + n;
    insert into internal.event_daily (day, event_type, events)
    select internal.utc_day(created_at), event_type, count(*)
    from api.analytics_events
    where created_at >= window_start and created_at < as_of and inserted_xid < horizon
    group by 1, 2;
    get diagnostics n = row_count;
    written := written + n;

    -- 2. back-dated events inserted since the watermark, added to their (older) days (idx_events_inserted_xid)
    if counted is not null then
        insert into internal.offer_view_daily as d (day, offer_id, views)
        select internal.utc_day(created_at), offer_id, count(*)
        from api.analytics_events
        where inserted_xid >= counted and inserted_xid < horizon and created_at < window_start
          and event_type = 'offer_view' and offer_id is not null
        group by 1, 2
        on conflict (day, offer_id) do update set views = d.views + excluded.views;
        get diagnostics n = row_count;
        written := written + n;
        insert into internal.event_daily as d (day, event_type, events)
        select internal.utc_day(created_at), event_type, count(*)
        from api.analytics_events
        where inserted_xid >= counted and inserted_xid < horizon and created_at < window_start
        group by 1, 2
        on conflict (day, event_type) do update set events = d.events + excluded.events;
        get diagnostics n = row_count;
        written := written + n;
    end if;

    -- 3. the watermark
    update internal.rollup_state set last_rolled_up_to = as_of, counted_before = horizon;
    return written;
end
$$;
comment on function internal.refresh_rollups(timestamptz) is
    'Recompute the daily rollups from the day before the previous refresh up to as_of, and add the events '
    'inserted since the insertion watermark to older days (back-dated events). Idempotent.';

-- Recounts every day from from_day (null: all history) from the raw events, e.g. after a bulk load with
-- old dates that happened before migration 027, or to check the rollups. Days whose raw events the
-- retention job already deleted come out lower: rebuild only days that still have their events.
create function internal.rebuild_rollups(from_day date, as_of timestamptz) returns integer
language plpgsql
set search_path = pg_catalog, internal, api
as $$
declare
    horizon xid8;
    since timestamptz := coalesce(from_day::timestamp at time zone 'UTC', '-infinity');
    written integer;
    n integer;
begin
    -- first a normal refresh: afterwards everything below the watermark is counted once, and the recount
    -- below uses the same watermark, so nothing is counted twice nor left out
    perform internal.refresh_rollups(as_of);
    select counted_before into horizon from internal.rollup_state;
    delete from internal.offer_view_daily where day >= coalesce(from_day, '-infinity'::date);
    delete from internal.event_daily where day >= coalesce(from_day, '-infinity'::date);
    insert into internal.offer_view_daily (day, offer_id, views)
    select internal.utc_day(created_at), offer_id, count(*)
    from api.analytics_events
    where event_type = 'offer_view' and offer_id is not null
      and created_at >= since and created_at < as_of and inserted_xid < horizon
    group by 1, 2;
    get diagnostics written = row_count;
    insert into internal.event_daily (day, event_type, events)
    select internal.utc_day(created_at), event_type, count(*)
    from api.analytics_events
    where created_at >= since and created_at < as_of and inserted_xid < horizon
    group by 1, 2;
    get diagnostics n = row_count;
    return written + n;
end
$$;
comment on function internal.rebuild_rollups(date, timestamptz) is
    'Recount the daily rollups of every UTC day from from_day (null: all) from the raw events, up to as_of.';
revoke execute on function internal.rebuild_rollups(date, timestamptz) from public;

-- Retention must not delete an event the rollups have not counted yet (a back-dated one inserted since the
-- last refresh): besides the time watermark, only events below the insertion watermark may go.
create or replace function internal.purge_events(as_of timestamptz) returns bigint
language plpgsql
set search_path = pg_catalog, internal, api
as $$
declare
    days integer := (select (value #>> '{}')::integer from internal.settings where name = 'analytics_retention_days');
    counted xid8 := (select counted_before from internal.rollup_state);
    removed bigint;
begin
    if days is null or counted is null then
        return 0;
    end if;
    delete from api.analytics_events
    where created_at < least(as_of - make_interval(days => days), internal.rollup_watermark())
      and inserted_xid < counted;
    get diagnostics removed = row_count;
    return removed;
end
$$;
