-- Bound the search text for every caller. PostgreSQL's web-search parser never checks for interrupts, so
-- statement_timeout cannot stop it: a 1 MB quoted term ran 7-11 s under a 3 s timeout. The gateway caps
-- anonymous values at 1000 characters (PGRST_SERVER_ANON_MAX_VALUE_LENGTH); this holds for signed-in callers.
-- PL/pgSQL so that the check runs first, whatever order the planner would evaluate a join in; a set-returning
-- function called from FROM is materialised either way (the SQL version was not inlined: it pins search_path).
create or replace function api.search_offers(search_term text) returns setof api.offers
language plpgsql stable
set search_path = pg_catalog, api
as $$
begin
    if length(search_term) > 1000 then
        raise exception using errcode = '22001', message = 'search_term is too long',
            detail = format('%s characters; at most 1000', length(search_term)),
            hint = 'Search with a few words or a short phrase.';
    end if;
    return query
        select o.*
        from api.offers o, websearch_to_tsquery('english', search_term) q
        where o.search_vector @@ q
        order by ts_rank(o.search_vector, q) desc, o.created_at desc;
end
$$;
