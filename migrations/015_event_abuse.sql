-- Analytics cannot be flooded or inflated (issue 10, item 8): event_data has a bounded size and shape,
-- a visitor's repeated view of an offer within a window is counted once, and a visitor records at most
-- so many events per minute.
--
-- Visitor: the JWT subject when signed in, else the client address (request.client_address, set by the
-- gateway after trusted-proxy resolution; may be missing) with the User-Agent. Either is stored only as
-- internal.pseudonym(...), a keyed hash (014_account_abuse.sql): no address is stored.

alter table api.analytics_events add column visitor bytea;
comment on column api.analytics_events.visitor is
    'Pseudonym of who caused the event (JWT subject, else client address + User-Agent); null for seeded or older rows.';

-- The rate check reads a visitor's newest events, the view check one visitor's views of one offer.
create index idx_events_visitor_time on api.analytics_events (visitor, created_at) where visitor is not null;
create index idx_events_visitor_views on api.analytics_events (visitor, offer_id, created_at)
    where visitor is not null and event_type = 'offer_view';

insert into internal.settings (name, value)
values ('event_limits', '{"events_per_minute": 60, "view_window_seconds": 1800}')
on conflict (name) do nothing;

-- Operators tune the limits with `select internal.set_event_limits(60, 1800)`; null turns one off.
create function internal.set_event_limits(events_per_minute integer, view_window_seconds integer) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
begin
    if events_per_minute < 1 or view_window_seconds < 1 then
        raise exception using errcode = '22023',
            message = 'event limits must be at least 1, or null for off';
    end if;
    update internal.settings
    set value = jsonb_build_object('events_per_minute', events_per_minute, 'view_window_seconds', view_window_seconds)
    where name = 'event_limits';
end
$$;
comment on function internal.set_event_limits(integer, integer) is
    'Events one visitor may record per minute, and the window (seconds) in which repeated views of an offer count once; null: off.';
revoke execute on function internal.set_event_limits(integer, integer) from public;

-- Who is asking, as a pseudonym. Signed in: the subject. Anonymous: address and User-Agent (the
-- User-Agent alone when the gateway gave no address).
create function internal.visitor() returns bytea
language sql volatile
set search_path = pg_catalog, internal
as $$
    select case
        when (select auth.uid()) is not null then internal.pseudonym('user:' || (select auth.uid())::text)
        else internal.pseudonym('anon:' || coalesce(current_setting('request.client_address', true), '') || E'\n'
            || coalesce(coalesce(nullif(current_setting('request.headers', true), ''), '{}')::json ->> 'user-agent', ''))
    end
$$;
comment on function internal.visitor() is
    'Pseudonym of the current visitor: JWT subject, else client address + User-Agent (never stored in clear).';
revoke execute on function internal.visitor() from public;

-- The shape rules of event_data, in one place (log_event and its tests).
create function internal.check_event_data(event_data jsonb) returns void
language plpgsql immutable
set search_path = pg_catalog
as $$
begin
    if event_data is null or jsonb_typeof(event_data) <> 'object' then
        raise exception using errcode = '22023', message = 'event_data must be a JSON object';
    end if;
    if octet_length(event_data::text) > 2048 then
        raise exception using errcode = '22023',
            message = format('event_data is too large (%s bytes): send at most 2048 bytes', octet_length(event_data::text)),
            hint = 'keep event_data to a few small fields, e.g. {"offer_id": "...", "source": "search"}';
    end if;
    if event_data @? 'strict $.**{4}' then
        raise exception using errcode = '22023',
            message = 'event_data is nested too deeply: use at most 3 levels below the top object';
    end if;
    if jsonb_array_length(jsonb_path_query_array(event_data, 'strict $.**{1 to last}')) > 32 then
        raise exception using errcode = '22023',
            message = 'event_data has too many values: use at most 32 keys and array elements in total';
    end if;
end
$$;
comment on function internal.check_event_data(jsonb) is
    'event_data limits: a JSON object of at most 2048 bytes (as jsonb text), 3 nested levels, 32 values in total.';
revoke execute on function internal.check_event_data(jsonb) from public;

create or replace function api.log_event(event_type text, event_data jsonb default '{}') returns uuid
language plpgsql security definer
set search_path = pg_catalog, api, internal
as $$
declare
    caller_role text := (select auth.role());
    limits jsonb := (select value from internal.settings where name = 'event_limits');
    per_minute integer := (limits ->> 'events_per_minute')::integer;
    view_window interval := make_interval(secs => (limits ->> 'view_window_seconds')::integer);
    who bytea;
    target uuid;
    event_id uuid;
    nth_newest timestamptz;
    wait_seconds integer;
begin
    if event_type is null or event_type not in ('offer_view', 'offer_click', 'referral_click') then
        raise exception using errcode = '22023',
            message = format('unknown event type %L', event_type),
            hint = 'use offer_view, offer_click or referral_click';
    end if;
    if caller_role = 'anonymous' and event_type <> 'offer_view' then
        raise exception using errcode = '42501', message = format('sign in to log %s events', event_type);
    end if;
    perform internal.check_event_data(event_data);
    if event_data ->> 'offer_id' !~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
        raise exception using errcode = '22023', message = 'event_data.offer_id must be an offer id (uuid)';
    end if;
    -- only offers the caller can see (RLS is bypassed here, so apply the same rule)
    select o.id into target from api.offers o
    where o.id = (event_data ->> 'offer_id')::uuid and (o.status = 'active' or caller_role = 'app_admin');
    if target is null then
        raise exception using errcode = '22023', message = 'event_data.offer_id does not name a visible offer';
    end if;
    who := internal.visitor();
    -- at most per_minute recorded events per visitor in the last minute: the per_minute-th newest one
    -- decides (one short index range scan)
    if per_minute is not null then
        select e.created_at into nth_newest from api.analytics_events e
        where e.visitor = who and e.created_at > now() - interval '1 minute'
        order by e.created_at desc offset per_minute - 1 limit 1;
        if nth_newest is not null then
            wait_seconds := greatest(1, ceil(extract(epoch from nth_newest + interval '1 minute' - now()))::integer);
            raise sqlstate 'PGRST' using
                message = json_build_object(
                    'code', 'RS429', 'details', format('The limit is %s events per minute per visitor.', per_minute),
                    'hint', format('try again in %s s', wait_seconds), 'message', 'too many events')::text,
                detail = json_build_object(
                    'status', 429, 'headers', json_build_object('Retry-After', wait_seconds::text))::text;
        end if;
    end if;
    -- a repeated view inside the window is the same view: answer with the event already recorded.
    -- The transaction lock on (visitor, offer) makes concurrent repeats wait and then see that event.
    if event_type = 'offer_view' and view_window is not null then
        perform pg_advisory_xact_lock(1021, hashtext(encode(who, 'hex') || target::text));
        -- no ORDER BY/LIMIT: planned for all matches, so the (visitor, offer_id, created_at) index wins;
        -- INTO takes the first (normally the only) one
        select e.id into event_id from api.analytics_events e
        where e.visitor = who and e.offer_id = target and e.event_type = 'offer_view'
          and e.created_at > now() - view_window;
        if event_id is not null then
            return event_id;
        end if;
    end if;
    insert into api.analytics_events (event_type, event_data, user_id, offer_id, visitor)
    values (event_type, event_data, (select auth.uid()), target, who)
    returning id into event_id;
    return event_id;
end
$$;
comment on function api.log_event(text, jsonb) is
    'Record an event about an offer: {"event_type":"offer_view","event_data":{"offer_id":"..."}}. Anonymous visitors may log offer_view. A visitor''s repeated view of an offer within 30 minutes is counted once (the first event''s id is returned); at most 60 events per visitor per minute (then 429); event_data at most 2048 bytes, 3 levels, 32 values.';
