-- Analytics events, recorded only through log_event.

create table api.analytics_events (
    id         uuid primary key default gen_random_uuid(),
    event_type text not null check (event_type in ('offer_view', 'offer_click', 'referral_click')),
    event_data jsonb not null check (jsonb_typeof(event_data) = 'object'),
    user_id    uuid references internal.users (id) on delete set null,
    offer_id   uuid references api.offers (id) on delete set null,
    created_at timestamptz not null default now()
);
comment on table api.analytics_events is 'Usage events (offer views, clicks). Admins read them; everyone writes through log_event.';
comment on column api.analytics_events.offer_id is 'event_data.offer_id as a key, for joins and counts.';
comment on column api.analytics_events.user_id is 'The signed-in user who caused the event (from the JWT), null when anonymous.';

create index idx_events_offer_time on api.analytics_events (offer_id, created_at);
create index idx_events_time on api.analytics_events (created_at);

alter table api.analytics_events enable row level security;
create policy events_admin_read on api.analytics_events for select to app_admin using (true);
grant select on api.analytics_events to app_admin;

-- SECURITY DEFINER because callers have no insert grant: the function is the only way in, and it
-- decides the user id (from the JWT, never from a parameter) and which events each role may log.
create function api.log_event(event_type text, event_data jsonb default '{}') returns uuid
language plpgsql security definer
set search_path = pg_catalog, api, internal
as $$
declare
    caller_role text := (select auth.role());
    target uuid;
    event_id uuid;
begin
    if event_type is null or event_type not in ('offer_view', 'offer_click', 'referral_click') then
        raise exception using errcode = '22023',
            message = format('unknown event type %L', event_type),
            hint = 'use offer_view, offer_click or referral_click';
    end if;
    if caller_role = 'anonymous' and event_type <> 'offer_view' then
        raise exception using errcode = '42501', message = format('sign in to log %s events', event_type);
    end if;
    if event_data is null or jsonb_typeof(event_data) <> 'object' then
        raise exception using errcode = '22023', message = 'event_data must be a JSON object';
    end if;
    if event_data ->> 'offer_id' !~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
        raise exception using errcode = '22023', message = 'event_data.offer_id must be an offer id (uuid)';
    end if;
    -- only offers the caller can see (RLS is bypassed here, so apply the same rule)
    select o.id into target from api.offers o
    where o.id = (event_data ->> 'offer_id')::uuid and (o.status = 'active' or caller_role = 'app_admin');
    if target is null then
        raise exception using errcode = '22023', message = 'event_data.offer_id does not name a visible offer';
    end if;
    insert into api.analytics_events (event_type, event_data, user_id, offer_id)
    values (event_type, event_data, (select auth.uid()), target)
    returning id into event_id;
    return event_id;
end
$$;
comment on function api.log_event(text, jsonb) is
    'Record an event about an offer: {"event_type":"offer_view","event_data":{"offer_id":"..."}}. Anonymous visitors may log offer_view.';
revoke execute on function api.log_event(text, jsonb) from public;
grant execute on function api.log_event(text, jsonb) to anonymous, app_user, app_admin;

-- As in the seed; security_invoker, so RLS on events and offers applies: only admins read it,
-- and draft offers never leak to anyone else.
create view api.offer_view_counts with (security_invoker = true) as
    select o.id as offer_id, o.title, count(*) as view_count
    from api.analytics_events ae
    join api.offers o on ae.offer_id = o.id
    where ae.event_type = 'offer_view'
    group by o.id, o.title
    order by view_count desc;
comment on view api.offer_view_counts is 'Admins: number of offer_view events per offer, most viewed first.';
grant select on api.offer_view_counts to app_admin;
