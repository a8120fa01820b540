-- Listing and search whose first page an index serves, whatever the data mix (issue 17).

-- The public listing (status = active, newest first) walked idx_offers_created_at backwards and dropped every
-- newer draft or expired row: a batch of a few thousand recent drafts made each request read thousands of rows.
-- Status first, then time: the scan starts at the newest active offer and reads exactly the page.
create index idx_offers_status_created on api.offers (status, created_at desc);
drop index api.idx_offers_status;  -- a prefix of the new index: one index fewer to keep up on every write

-- Search: a RUM index keeps the positions and weights of each lexeme, so it returns matches in rank order and
-- the first page reads about a page of rows instead of ranking every match (156k rows for a common term at 1M
-- offers). It serves @@ too, so the GIN index goes. The rank is RUM's score (<=>): title (A) over institution
-- (B) over requirements (C) with ts_rank's default weights, equal to ts_rank for one-word searches; for several
-- words it scores cover density where ts_rank scores proximity (both put documents holding every word first).
-- Ties come in index order: a second sort key (the old "newest first") would make PostgreSQL 15 sort every match.
create extension if not exists rum;
create index idx_offers_search_rum on api.offers using rum (search_vector rum_tsvector_ops);
drop index api.idx_offers_search;

-- Under RLS (anonymous and users see active offers through a policy) only LEAKPROOF operators may be evaluated
-- before the policy's condition, so neither @@ nor <=> could use any index: every request scanned the table. Both
-- return a boolean or a distance computed from their two arguments and raise no error that depends on a row's
-- contents, so they leak nothing about rows the policy hides. Superuser-only, like the migrations.
alter function pg_catalog.ts_match_vq(tsvector, tsquery) leakproof;
alter function rum_ts_distance(tsvector, tsquery) leakproof;

-- The 1000-character bound of migration 016, as a function of the argument: an argument is evaluated before
-- the function it is passed to, so no longer text ever reaches the web-search parser. It is also a condition
-- of its own on the argument alone, which PostgreSQL checks once before reading any row (a one-time filter, or
-- a filter on the request body's row): too long is refused even when no offer could match.
create function internal.bounded_search_term(search_term text) returns text
language plpgsql immutable
set search_path = pg_catalog
as $$
begin
    if length(search_term) > 1000 then
        raise exception using errcode = '22001', message = 'search_term is too long',
            detail = format('%s characters; at most 1000', length(search_term)),
            hint = 'Search with a few words or a short phrase.';
    end if;
    return search_term;
end
$$;
revoke execute on function internal.bounded_search_term(text) from public;
grant execute on function internal.bounded_search_term(text) to anonymous, app_user, app_admin;

-- A SQL function with a standard body and no SET clause is inlined into the caller's query, so the page (the
-- gateway's LIMIT/OFFSET from limit=, offset= or Range) is applied inside the ranked query and the index scan
-- stops after it. The standard body binds every name when the function is created: no search_path can redirect
-- it. The query is written out twice rather than joined from FROM: only an expression of the argument (not a
-- column of another relation) can drive an index scan in a prepared statement's generic plan.
create or replace function api.search_offers(search_term text) returns setof api.offers
language sql stable
begin atomic
    select o.*
    from api.offers o
    where internal.bounded_search_term(search_term) is not null
      and o.search_vector @@ websearch_to_tsquery('english'::regconfig, internal.bounded_search_term(search_term))
    order by o.search_vector <=> websearch_to_tsquery('english'::regconfig, internal.bounded_search_term(search_term));
end;
alter function api.search_offers(text) reset all;  -- no pinned search_path (migration 016's): it blocks inlining
comment on function api.search_offers(text) is
    'Offers matching free text (web-search syntax: words, "quoted phrases", or, -not), best match first.';
