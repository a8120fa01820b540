-- Offer view counts that stay fast as events grow (issue 17): api.offer_view_counts aggregated every event on
-- each call (seconds at 10M events). Now: per-offer totals in a materialized view over the daily rollups
-- (internal.offer_view_daily, kept by internal.refresh_rollups), refreshed by pg_cron, plus the events the
-- rollups had not counted when it was refreshed. Exact at every moment, and the top of the list is read from
-- an index.
--
-- What the rollups have counted (migrations 010 and 027): exactly the events inserted by a transaction below
-- the insertion watermark (rollup_state.counted_before) and created before the time watermark
-- (last_rolled_up_to). The materialized view stores both watermarks as they were in the snapshot it was
-- computed from, so "counted" and "not yet counted" never overlap nor leave a gap, whenever each job runs.
-- Retention (011) deletes only counted events: a view it deleted still counts, as on the dashboard (the old
-- view counted only the events still stored).

-- Stored most viewed first: the index on views then reads the heap in order, which PostgreSQL counts as cheap.
create materialized view internal.offer_view_totals as
    select t.offer_id, t.views, s.counted_before, s.last_rolled_up_to
    from (select offer_id, sum(views)::bigint as views from internal.offer_view_daily group by offer_id) t,
         internal.rollup_state s
    where s.counted_before is not null and s.last_rolled_up_to is not null
    order by t.views desc;
comment on materialized view internal.offer_view_totals is
    'offer_view events per offer counted by the rollups, with the watermarks they were counted up to.';
create unique index idx_offer_view_totals_offer on internal.offer_view_totals (offer_id);
create index idx_offer_view_totals_views on internal.offer_view_totals (views desc);

-- Events not in the totals, per offer: few (those since the last refresh). PL/pgSQL so that the watermarks
-- are values when the query is planned: idx_events_inserted_xid and idx_events_time then find the events (as
-- a join or a subquery, the planner would estimate a third of all events and scan them). No totals yet
-- (before the first rollup refresh): every event.
create function internal.offer_views_since_totals() returns table (offer_id uuid, views bigint)
language plpgsql stable rows 100
set search_path = pg_catalog
as $$
declare
    counted xid8;
    rolled timestamptz;
begin
    select t.counted_before, t.last_rolled_up_to into counted, rolled from internal.offer_view_totals t limit 1;
    return query
        select e.offer_id, count(*)::bigint
        from api.analytics_events e
        where e.event_type = 'offer_view' and e.offer_id is not null
          and (e.inserted_xid >= coalesce(counted, '0'::xid8) or e.created_at >= coalesce(rolled, '-infinity'))
        group by e.offer_id;
end
$$;
comment on function internal.offer_views_since_totals() is
    'offer_view events per offer that internal.offer_view_totals does not count yet.';
revoke execute on function internal.offer_views_since_totals() from public;
grant execute on function internal.offer_views_since_totals() to app_admin;

-- Two disjoint parts, each sorted by view_count, merged: "most viewed first" with a limit reads about limit +
-- (offers viewed since the refresh) rows. Offers without recent views: their total, in the order of
-- idx_offer_view_totals_views (cheaper than sorting even for all rows, since the heap is stored in that order),
-- the recent ones left out by a hashed NOT IN, a filter that keeps the order (an anti join would hash the totals
-- and sort them all: 370 ms at 1M offers). Offers with recent views: total + recent, a small sort.
-- security_invoker: the caller's rights and RLS apply (admins only; draft offers never leak), as before.
create or replace view api.offer_view_counts with (security_invoker = true) as
    select c.offer_id, o.title, c.view_count
    from (
        (select t.offer_id, t.views as view_count
         from internal.offer_view_totals t
         where t.offer_id not in (select r.offer_id from internal.offer_views_since_totals() r)
         order by t.views desc)
        union all
        (select r.offer_id, coalesce(t.views, 0) + r.views
         from internal.offer_views_since_totals() r
         left join internal.offer_view_totals t on t.offer_id = r.offer_id
         order by 2 desc)
    ) c
    join api.offers o on o.id = c.offer_id
    order by c.view_count desc;
comment on view api.offer_view_counts is 'Admins: number of offer_view events per offer, most viewed first.';
grant select on api.offer_view_counts to app_admin;

revoke all on internal.offer_view_totals from public;
grant select on internal.offer_view_totals to app_admin;

-- Refreshed after each rollup refresh; CONCURRENTLY: readers never wait for it.
create function internal.refresh_view_totals() returns void
language plpgsql
set search_path = pg_catalog
as $$
begin
    refresh materialized view concurrently internal.offer_view_totals;
    analyze internal.offer_view_totals;  -- the order of the heap against the index, for the planner
end
$$;
comment on function internal.refresh_view_totals() is 'Recompute the per-offer view totals from the daily rollups.';
revoke execute on function internal.refresh_view_totals() from public;
select cron.schedule('refresh-view-totals', '1-59/5 * * * *', 'select internal.refresh_view_totals()');
