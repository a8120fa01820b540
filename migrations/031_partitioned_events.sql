-- api.analytics_events partitioned by month (issue 16, "events that can grow for years"): PostgreSQL's
-- declarative range partitioning on created_at, one partition per UTC month in the private schema
-- (internal.analytics_events_y2026m12), created three months ahead by a pg_cron job, and retention that
-- drops whole partitions instead of deleting rows.
--
-- Decisions (docs/scaling.md, "Partitioned events"):
-- * Primary key (id, created_at): a unique key of a partitioned table must contain the partition key.
--   id stays a random uuid (gen_random_uuid), so it is still unique in practice; nothing references an event
--   by key (no foreign key points here), log_event still returns the id, and a lookup by id alone probes
--   each partition's primary-key index once.
-- * A DEFAULT partition (internal.analytics_events_default) takes rows of a month that has no partition
--   (a back-dated bulk load, or the job not having run for three months): an insert never fails for want of
--   a partition. The partitions job gives the months found there a partition of their own and moves their
--   rows (ATTACH would refuse otherwise), so the default stays small.
-- * Partitions live in `internal` (never exposed), with row level security on and no policy and no grants:
--   reading goes through the parent, whose policy and grants apply.
-- * Each partition's indexes are named after the parent's index and the month (idx_events_time_y2026m12),
--   so plans read as before. New partitions are created detached, indexed, then ATTACHed: that takes SHARE
--   UPDATE EXCLUSIVE on the parent (reads and writes go on), where CREATE TABLE ... PARTITION OF would take
--   ACCESS EXCLUSIVE.
-- * The rows move in this migration's one transaction under an ACCESS EXCLUSIVE lock: reads and writes of
--   events wait until it commits (measured: see docs/scaling.md), then go on against the new table (a
--   waiting insert re-resolves the name after the lock; nothing is lost, tests/db/test_event_partitions.py).
--   A weaker lock (writes blocked, reads allowed) would have to be upgraded for the swap at the end, and
--   log_event, which reads then writes, would deadlock against that upgrade. The new foreign keys need
--   SHARE ROW EXCLUSIVE on api.offers and internal.users: taken first, so writes of offers and users wait
--   too (sign-ins among them; reads go on), and a transaction that deletes an offer or a user (cascading to
--   events) cannot deadlock with us.
-- * The old table is emptied and moved aside (internal.analytics_events_unpartitioned), not dropped here:
--   dropping it removes its foreign-key triggers from api.offers, which takes ACCESS EXCLUSIVE on offers,
--   and a log_event that read an offer and waits for events would deadlock with that. A one-off pg_cron job
--   (drop-unpartitioned-events) drops it in a transaction of its own a few minutes later, then unschedules
--   itself.
-- * inserted_xid is copied as it was: the rollups' insertion watermark (027) still tells counted from not
--   counted; a new transaction id on every row would count all history a second time.

set local search_path = pg_catalog;  -- every name below is qualified; deparsed views and indexes come out qualified

lock table api.offers, internal.users in share row exclusive mode;
lock table api.analytics_events in access exclusive mode;

-- What the old table carries that the new one must carry too, read from the catalog so that columns,
-- indexes, views and grants added by earlier migrations (or by a site) come along.
create temp table m031_views on commit drop as
    select distinct r.ev_class::regclass as view, c.relkind, c.reloptions, pg_get_viewdef(r.ev_class) as def
    from pg_depend d join pg_rewrite r on r.oid = d.objid join pg_class c on c.oid = r.ev_class
    where d.classid = 'pg_rewrite'::regclass and d.refobjid = 'api.analytics_events'::regclass
      and r.ev_class <> 'api.analytics_events'::regclass;
create temp table m031_indexes on commit drop as
    select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as def
    from pg_index i
    where i.indrelid = 'api.analytics_events'::regclass
      and not exists (select from pg_constraint c where c.conindid = i.indexrelid);
create temp table m031_foreign_keys on commit drop as
    select conname, pg_get_constraintdef(oid) as def
    from pg_constraint where conrelid = 'api.analytics_events'::regclass and contype = 'f';
create temp table m031_policies on commit drop as
    select policyname, permissive, cmd, roles, qual, with_check
    from pg_policies where schemaname = 'api' and tablename = 'analytics_events';
create temp table m031_grants on commit drop as
    select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end as grantee, a.privilege_type
    from pg_class c, aclexplode(c.relacl) a
    where c.oid = 'api.analytics_events'::regclass and a.grantee <> c.relowner;

do $$
begin
    if exists (select from m031_views where relkind <> 'v') then
        raise exception 'a materialized view reads api.analytics_events: drop it before migration 031, recreate it after';
    end if;
end
$$;

-- The old table steps aside under another name; its index names are freed for the new table.
do $$
declare
    ix record;
begin
    for ix in select name from m031_indexes loop
        execute format('drop index %s', ix.name);
    end loop;
    alter table api.analytics_events drop constraint analytics_events_pkey;
    alter table api.analytics_events rename to analytics_events_unpartitioned;
end
$$;

create table api.analytics_events (
    like api.analytics_events_unpartitioned
    including defaults including constraints including comments including storage including compression
) partition by range (created_at);
comment on table api.analytics_events is
    'Usage events (offer views, clicks). Admins read them; everyone writes through log_event. '
    'Partitioned by month of created_at (internal.analytics_events_yYYYYmMM, plus a default partition).';
alter table api.analytics_events enable row level security;

do $$
declare
    p record;
    g record;
begin
    for p in select * from m031_policies loop
        execute format('create policy %I on api.analytics_events as %s for %s to %s%s%s',
                       p.policyname, p.permissive, p.cmd,
                       (select string_agg(quote_ident(r), ', ') from unnest(p.roles) r),
                       ' using (' || p.qual || ')', ' with check (' || p.with_check || ')');
    end loop;
    for g in select * from m031_grants loop
        execute format('grant %s on api.analytics_events to %s', g.privilege_type, g.grantee);
    end loop;
end
$$;

create table internal.analytics_events_default partition of api.analytics_events default;
comment on table internal.analytics_events_default is
    'Events of months without a partition of their own; internal.create_event_partitions moves them out.';
alter table internal.analytics_events_default enable row level security;  -- no policy: read through the parent

-- The partitions of api.analytics_events and their bounds (null for the default partition).
create function internal.event_partitions()
returns table (partition regclass, starts timestamptz, ends timestamptz)
language sql stable
set search_path = pg_catalog
set datestyle = 'ISO, YMD'  -- the bounds are printed and read back in one known style
as $$
    select c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    left join lateral regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') b on true
    where i.inhparent = 'api.analytics_events'::regclass
    order by 2 nulls first
$$;
comment on function internal.event_partitions() is
    'The partitions of api.analytics_events with their time range (null: the default partition).';
revoke execute on function internal.event_partitions() from public;

-- Gives a partition (attached or not yet) one index per index of the parent, named after it and `suffix`;
-- an attached partition's new indexes are attached to the parent's. Indexes it already has are kept.
create function internal.index_event_partition(part regclass, suffix text) returns void
language plpgsql
set search_path = pg_catalog
as $$
declare
    ix record;
    name text;
begin
    for ix in
        select i.indexrelid::regclass as parent_index, c.relname, pg_get_indexdef(i.indexrelid) as def
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'api.analytics_events'::regclass
          and not exists (select from pg_constraint k where k.conindid = i.indexrelid)
    loop
        name := left(ix.relname, 62 - length(suffix)) || '_' || suffix;
        if to_regclass(format('internal.%I', name)) is null then
            execute regexp_replace(ix.def, '^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ USING ',
                                   format('CREATE \1INDEX %I ON %s USING ', name, part));
        end if;
        if (select relispartition from pg_class where oid = part)
           and not exists (select from pg_inherits h where h.inhparent = ix.parent_index
                                                     and h.inhrelid = format('internal.%I', name)::regclass) then
            execute format('alter index %s attach partition internal.%I', ix.parent_index, name);
        end if;
    end loop;
end
$$;
comment on function internal.index_event_partition(regclass, text) is
    'Create (and attach) a partition''s copies of the indexes of api.analytics_events, named <index>_<suffix>.';
revoke execute on function internal.index_event_partition(regclass, text) from public;

-- The partition of one UTC month: created detached, indexed, filled with that month's rows from the default
-- partition, then attached. Returns false when the month has a partition already.
create function internal.create_event_partition(month date) returns boolean
language plpgsql
set search_path = pg_catalog
set lock_timeout = '10s'  -- never queue for long in front of every reader and writer of events
as $$
declare
    first_day date := date_trunc('month', month)::date;
    lo timestamptz := first_day::timestamp at time zone 'UTC';
    hi timestamptz := (first_day + interval '1 month')::timestamp at time zone 'UTC';
    suffix text := to_char(first_day, '"y"YYYY"m"MM');
    name text := 'analytics_events_' || suffix;
begin
    if month is null then
        raise exception using errcode = '22023', message = 'the month of an event partition cannot be null';
    end if;
    if exists (select from internal.event_partitions() p where p.starts = lo) then
        return false;
    end if;
    execute format('create table internal.%I (like api.analytics_events including defaults including constraints'
                   ' including storage including compression)', name);
    execute format('comment on table internal.%I is %L', name,
                   format('Analytics events created in %s (UTC); a partition of api.analytics_events.', to_char(first_day, 'YYYY-MM')));
    execute format('alter table internal.%I enable row level security', name);  -- no policy: read through the parent
    perform internal.index_event_partition(format('internal.%I', name)::regclass, suffix);
    -- the default partition may hold rows of this month (ATTACH refuses then): they move in, with their
    -- inserted_xid, in this transaction; the lock keeps new ones from arriving there meanwhile
    if to_regclass('internal.analytics_events_default') is not null then
        lock table internal.analytics_events_default in share row exclusive mode;
        execute format('with moved as (delete from internal.analytics_events_default'
                       ' where created_at >= $1 and created_at < $2 returning *)'
                       ' insert into internal.%I select * from moved', name) using lo, hi;
    end if;
    execute format('alter table api.analytics_events attach partition internal.%I for values from (%L) to (%L)',
                   name, lo, hi);
    return true;
end
$$;
comment on function internal.create_event_partition(date) is
    'Create and attach the partition of api.analytics_events for the UTC month of `month` (false if it exists).';
revoke execute on function internal.create_event_partition(date) from public;

-- The pg_cron job's function: a partition for every month from as_of's to (as_of + ahead)'s, and one for
-- every month that has rows in the default partition. Returns how many partitions it created.
create function internal.create_event_partitions(as_of timestamptz, ahead interval default interval '3 months')
returns integer
language plpgsql
set search_path = pg_catalog
as $$
declare
    m date;
    created integer := 0;
begin
    if as_of is null or ahead is null or ahead < interval '0' or ahead > interval '10 years' then
        raise exception using errcode = '22023',
            message = 'create_event_partitions needs a reference time and an interval ahead between 0 and 10 years',
            hint = 'e.g. select internal.create_event_partitions(now(), interval ''3 months'')';
    end if;
    perform pg_advisory_xact_lock(1031, 1);  -- one run at a time (the job and a manual call)
    for m in
        select generate_series(date_trunc('month', as_of at time zone 'UTC'),
                               date_trunc('month', (as_of + ahead) at time zone 'UTC'), interval '1 month')::date
        union
        select distinct date_trunc('month', created_at at time zone 'UTC')::date from internal.analytics_events_default
        order by 1
    loop
        if internal.create_event_partition(m) then
            created := created + 1;
        end if;
    end loop;
    return created;
end
$$;
comment on function internal.create_event_partitions(timestamptz, interval) is
    'Partitions of api.analytics_events for the months from as_of to as_of + ahead, and for the months of '
    'rows in the default partition (moved out). Returns how many it created.';
revoke execute on function internal.create_event_partitions(timestamptz, interval) from public;

-- The months of the existing rows and the next three, then the rows themselves (with their inserted_xid).
select internal.create_event_partition(m::date)
from generate_series((select date_trunc('month', min(created_at) at time zone 'UTC') from api.analytics_events_unpartitioned),
                     (select date_trunc('month', max(created_at) at time zone 'UTC') from api.analytics_events_unpartitioned),
                     interval '1 month') m;
select internal.create_event_partitions(now(), interval '3 months');

insert into api.analytics_events select * from api.analytics_events_unpartitioned;

do $$
declare
    before bigint := (select count(*) from api.analytics_events_unpartitioned);
    after bigint := (select count(*) from api.analytics_events);
begin
    if before <> after then
        raise exception 'migration 031 moved % of % events: rolled back', after, before;
    end if;
end
$$;

-- Indexes, built once the rows are in: the parent's (from the old definitions), each partition's, the key.
do $$
declare
    ix record;
    p record;
begin
    for ix in select def from m031_indexes loop
        execute regexp_replace(ix.def, ' ON api\.analytics_events USING ', ' ON ONLY api.analytics_events USING ');
    end loop;
    for p in select partition, starts from internal.event_partitions() loop
        perform internal.index_event_partition(
            p.partition, coalesce(to_char(p.starts at time zone 'UTC', '"y"YYYY"m"MM'), 'default'));
    end loop;
end
$$;
alter table api.analytics_events add constraint analytics_events_pkey primary key (id, created_at);

do $$
declare
    fk record;
    v record;
begin
    -- validated by one query per partition, not a check per copied row
    for fk in select * from m031_foreign_keys loop
        execute format('alter table api.analytics_events add constraint %I %s', fk.conname, fk.def);
    end loop;
    -- views read the new table: same definition (parsed again, by name), same options, grants and comments
    for v in select * from m031_views loop
        execute format('create or replace view %s%s as %s', v.view,
                       ' with (' || array_to_string(v.reloptions, ', ') || ')', v.def);
    end loop;
end
$$;

-- the old table, empty, out of the API schema until the job below drops it
truncate api.analytics_events_unpartitioned;
alter table api.analytics_events_unpartitioned set schema internal;

create function internal.drop_unpartitioned_events() returns boolean
language plpgsql
set search_path = pg_catalog
set lock_timeout = '200ms'  -- the drop locks api.offers: readers of offers queue behind it at most this long
as $$
begin
    begin
        drop table if exists internal.analytics_events_unpartitioned;  -- refuses if anything still depends on it
    exception when lock_not_available then
        return false;  -- busy: the next run (10 minutes) tries again
    end;
    if exists (select from cron.job where jobname = 'drop-unpartitioned-events') then
        perform cron.unschedule('drop-unpartitioned-events');
    end if;
    return true;
end
$$;
comment on function internal.drop_unpartitioned_events() is
    'One-off (migration 031): drop the emptied pre-partitioning events table, then unschedule this job (false: busy, retried).';
revoke execute on function internal.drop_unpartitioned_events() from public;
select cron.schedule('drop-unpartitioned-events', '*/10 * * * *', 'select internal.drop_unpartitioned_events()');

-- Retention drops whole partitions. A partition goes when it ends before the cutoff (the retention period,
-- and the rollups' time watermark) and none of its rows is above the rollups' insertion watermark (a
-- back-dated event inserted since the last refresh is not counted yet: its partition waits for the next
-- run). The check and the DROP happen under an ACCESS EXCLUSIVE lock on the parent (taken once, held for
-- milliseconds), so no insert can slip into the partition between them. Rows of the default partition are
-- deleted with the same two conditions. Returns how many events went.
create or replace function internal.purge_events(as_of timestamptz) returns bigint
language plpgsql
set search_path = pg_catalog, internal, api
set lock_timeout = '10s'  -- fail (and retry tomorrow) rather than queue in front of every reader and writer
as $$
declare
    days integer := (select (value #>> '{}')::integer from internal.settings where name = 'analytics_retention_days');
    counted xid8 := (select counted_before from internal.rollup_state);
    cutoff timestamptz;
    candidates regclass[];
    sizes bigint[];
    part regclass;
    n bigint;
    uncounted boolean;
    removed bigint := 0;
begin
    if days is null or counted is null then
        return 0;
    end if;
    cutoff := least(as_of - make_interval(days => days), internal.rollup_watermark());
    select array_agg(partition order by starts) into candidates
    from internal.event_partitions() where ends <= cutoff;
    -- counted before the lock, so that counting holds no one up: a partition this old receives (rare)
    -- back-dated rows only, and such a row is above the watermark, so the check under the lock keeps it
    for i in 1 .. coalesce(cardinality(candidates), 0) loop
        execute format('select count(*) from %s', candidates[i]) into n;
        sizes[i] := n;
    end loop;
    if candidates is not null then
        lock table api.analytics_events in access exclusive mode;
    end if;
    for i in 1 .. coalesce(cardinality(candidates), 0) loop
        part := candidates[i];
        execute format('select exists (select from %s where inserted_xid >= $1)', part) into uncounted using counted;
        if not uncounted then  -- else an event not counted yet: the partition waits for the next run
            execute format('drop table %s', part);
            removed := removed + sizes[i];
        end if;
    end loop;
    delete from internal.analytics_events_default where created_at < cutoff and inserted_xid < counted;
    get diagnostics n = row_count;
    return removed + n;
end
$$;
comment on function internal.purge_events(timestamptz) is
    'Retention: drop the partitions of raw events that end before the retention period and the rollups'' '
    'watermark and hold no event the rollups have not counted; delete such rows of the default partition.';

select cron.schedule('create-event-partitions', '7 2 * * *',
                     'select internal.create_event_partitions(now(), interval ''3 months'')');

analyze api.analytics_events;

set local search_path to default;
