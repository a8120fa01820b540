-- Full-text search: the seed's weighted vector, searched with websearch syntax under the caller's RLS.

alter table api.offers add column search_vector tsvector
    generated always as (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(institution, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(requirements, '')), 'C')
    ) stored;
comment on column api.offers.search_vector is 'Weighted text of title (A), institution (B) and requirements (C).';

create index idx_offers_search on api.offers using gin (search_vector);

-- SECURITY INVOKER and STABLE: RLS applies (anonymous finds only active offers) and GET may call it.
create function api.search_offers(search_term text) returns setof api.offers
language sql stable
set search_path = pg_catalog, api
as $$
    select o.*
    from api.offers o, websearch_to_tsquery('english', search_term) q
    where o.search_vector @@ q
    order by ts_rank(o.search_vector, q) desc, o.created_at desc
$$;
comment on function api.search_offers(text) is
    'Offers matching free text (web-search syntax: words, "quoted phrases", or, -not), best match first.';
revoke execute on function api.search_offers(text) from public;
grant execute on function api.search_offers(text) to anonymous, app_user, app_admin;
