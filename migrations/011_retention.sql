-- Retention of raw analytics events: off by default; when on, never deletes an event whose day the
-- rollups may still recompute (see internal.rollup_watermark in 010_dashboard.sql).

create table internal.settings (
    name  text primary key,
    value jsonb not null
);
comment on table internal.settings is 'Operator-tunable settings of the database side (not secrets).';
alter table internal.settings enable row level security;  -- no policy: owner and definer functions only
insert into internal.settings (name, value) values ('analytics_retention_days', 'null');

-- Operators turn retention on with `select internal.set_event_retention(90)` and off with null.
create function internal.set_event_retention(days integer) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    if days is not null and days < 1 then
        raise exception using errcode = '22023', message = 'retention must be at least 1 day, or null for off';
    end if;
    update internal.settings set value = to_jsonb(days) where name = 'analytics_retention_days';
end
$$;
comment on function internal.set_event_retention(integer) is 'Keep raw analytics events this many days (null: forever).';
revoke execute on function internal.set_event_retention(integer) from public;

-- Deletes events older than the retention period and already final in the rollups; returns how many.
create function internal.purge_events(as_of timestamptz) returns bigint
language plpgsql
set search_path = pg_catalog, internal, api
as $$
declare
    days integer := (select (value #>> '{}')::integer from internal.settings where name = 'analytics_retention_days');
    removed bigint;
begin
    if days is null then
        return 0;
    end if;
    delete from api.analytics_events
    where created_at < least(as_of - make_interval(days => days), internal.rollup_watermark());
    get diagnostics removed = row_count;
    return removed;
end
$$;
comment on function internal.purge_events(timestamptz) is 'Retention: delete raw events past the retention period that the rollups already count.';
revoke execute on function internal.purge_events(timestamptz) from public;

select cron.schedule('purge-old-events', '43 3 * * *', 'select internal.purge_events(now())');
