-- Offers: the seed's columns and indexes (no bonus_value), made strict.

-- Strict ISO date (YYYY-MM-DD) of metadata.expiry_date, null when absent. Raises a clear error
-- for anything else, so a malformed expiry is refused on write. Immutable: it feeds a generated column.
create function internal.offer_expiry(metadata jsonb) returns date
language plpgsql immutable
as $$
declare
    raw text := metadata ->> 'expiry_date';
begin
    if raw is null then
        return null;
    end if;
    if jsonb_typeof(metadata -> 'expiry_date') <> 'string' or raw !~ '^\d{4}-\d{2}-\d{2}$' then
        raise exception using errcode = '22007',
            message = format('metadata.expiry_date must be an ISO date (YYYY-MM-DD), got %s', metadata -> 'expiry_date');
    end if;
    return make_date(substr(raw, 1, 4)::int, substr(raw, 6, 2)::int, substr(raw, 9, 2)::int);
exception when datetime_field_overflow then
    raise exception using errcode = '22008',
        message = format('metadata.expiry_date is not a calendar date: %s', raw);
end
$$;
comment on function internal.offer_expiry(jsonb) is 'metadata.expiry_date as a date; raises on a malformed value.';

-- Evaluated as the writing role when an offer is stored: only admins write offers.
revoke execute on function internal.offer_expiry(jsonb) from public;
grant execute on function internal.offer_expiry(jsonb) to app_admin;

create table api.offers (
    id           uuid primary key default gen_random_uuid(),
    title        text not null check (length(trim(title)) > 0),
    institution  text not null check (length(trim(institution)) > 0),
    offer_type   text not null check (offer_type in ('bank_account', 'credit_card', 'brokerage')),
    requirements text,
    status       text not null default 'draft' check (status in ('draft', 'active', 'expired', 'archived')),
    metadata     jsonb check (metadata is null or jsonb_typeof(metadata) = 'object'),
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    expires_on   date generated always as (internal.offer_expiry(metadata)) stored
);
comment on table api.offers is 'Bank-account, credit-card and brokerage bonus offers. Anyone sees active offers; admins manage all.';
comment on column api.offers.offer_type is 'bank_account, credit_card or brokerage.';
comment on column api.offers.status is 'draft, active, expired or archived; only active offers are public.';
comment on column api.offers.metadata is 'Free-form details; expiry_date (YYYY-MM-DD) drives automatic expiry.';
comment on column api.offers.expires_on is 'metadata.expiry_date as a date (read-only, derived).';

create index idx_offers_status on api.offers (status);
create index idx_offers_institution on api.offers (institution);
create index idx_offers_type on api.offers (offer_type);
create index idx_offers_created_at on api.offers (created_at);
create index idx_offers_metadata on api.offers using gin (metadata);
create index idx_offers_active_expiry on api.offers (expires_on) where status = 'active';

create trigger offers_touch before update on api.offers
    for each row execute function internal.touch_updated_at();

alter table api.offers enable row level security;

-- Anyone may read active offers.
create policy offers_view_active on api.offers for select to anonymous, app_user
    using (status = 'active');
-- Admins see and manage every offer; nobody else writes (no write grants either).
create policy offers_admin_all on api.offers for all to app_admin using (true) with check (true);

grant select on api.offers to anonymous, app_user;
grant select, insert, update, delete on api.offers to app_admin;

-- Moves active offers whose expiry date lies before as_of to expired; returns how many moved.
create function api.expire_offers(as_of date default current_date) returns integer
language sql
set search_path = pg_catalog, api
as $$
    with moved as (
        update api.offers set status = 'expired'
        where status = 'active' and expires_on < as_of
        returning 1
    )
    select count(*)::integer from moved
$$;
comment on function api.expire_offers(date) is 'Admins: mark active offers past their expiry date as expired; returns the count.';
revoke execute on function api.expire_offers(date) from public;
grant execute on function api.expire_offers(date) to app_admin;
