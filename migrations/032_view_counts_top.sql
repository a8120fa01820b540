-- The top of api.offer_view_counts read from the totals' index at any size (issue 17, W7): at 1M offers and 10M
-- events `?limit=10` took 188-287 ms because 029's parts were each planned on their own, for all their rows
-- (a UNION ALL part with an ORDER BY or a join is a subquery of its own, and PostgreSQL plans a subquery under
-- an ORDER BY for full retrieval): it sorted all 990k totals, the caller's LIMIT never reached the index.
--
-- What the planner needs to stop early is a Merge Append whose parts are read in view_count order: the totals
-- through idx_offer_view_totals_views, and the offers viewed since the refresh (few; a small sort). Measured on
-- PostgreSQL 15 at 990k totals: it builds that Merge Append only if the totals' part reads the totals alone,
-- with no subquery in its condition (029's hashed NOT IN, or an = ANY (ARRAY(...)), made it sort every total).
-- So the totals' part has no condition: it lists every total, marked `counted`, and the rows of the offers
-- viewed since the refresh are dropped after the merge (they come again, with their recent views, from the
-- other part). The title and the check that the caller may see the offer (api.offers' RLS: a security_invoker
-- view; an offer deleted since has no row either) are primary-key probes, also after the merge, so they run for
-- the rows the page needs. OFFSET 0 keeps these conditions out of the merged query.
--
-- The page (limit, offset, Range) and an order=view_count.desc from the gateway then read about limit + offset
-- totals: 1.4-11 ms at 10M events for limit 10 with offset 0-1000, against 370 ms. Kept from 029: exact at
-- any time (the watermarks as the totals recorded them), most viewed first, admins only, drafts included for
-- them. Alternative considered: a plain totals table kept by the rollup job (same plan question; more writes).
create or replace view api.offer_view_counts with (security_invoker = true) as
    select x.offer_id, (select o.title from api.offers o where o.id = x.offer_id) as title, x.view_count
    from (
        select c.offer_id, c.view_count, c.counted
        from (
            select t.offer_id, t.views as view_count, true as counted
            from internal.offer_view_totals t
            union all
            (select r.offer_id, coalesce(t.views, 0) + r.views, false
             from internal.offer_views_since_totals() r
             left join internal.offer_view_totals t on t.offer_id = r.offer_id)
        ) c
        order by c.view_count desc
        offset 0
    ) x
    where not (x.counted and x.offer_id = any (array(select r.offer_id from internal.offer_views_since_totals() r)))
      and (select o.title from api.offers o where o.id = x.offer_id) is not null;
comment on view api.offer_view_counts is 'Admins: number of offer_view events per offer, most viewed first.';
