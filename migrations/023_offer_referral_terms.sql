-- Offers gain referral terms (issue 14): whether members' referral links are accepted, the rewards, the
-- issuer's annual cap, the link patterns the issuer's own application uses, and a public (non-referral)
-- link. Offer types use Churnistic's vocabulary: bank, credit_card, brokerage (bank_account is an alias).

-- --- offer types -------------------------------------------------------------------------------------------

alter table api.offers drop constraint offers_offer_type_check;
update api.offers set offer_type = 'bank' where offer_type = 'bank_account';
alter table api.offers add constraint offers_offer_type_check
    check (offer_type in ('bank', 'credit_card', 'brokerage'));
comment on column api.offers.offer_type is
    'bank, credit_card or brokerage (bank_account is accepted as an alias of bank and stored as bank).';

-- Old clients still send bank_account: it is stored as bank. A BEFORE trigger runs before the CHECK.
create function internal.offer_type_alias() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
    if new.offer_type = 'bank_account' then
        new.offer_type := 'bank';
    end if;
    return new;
end
$$;
comment on function internal.offer_type_alias() is 'Trigger: the deprecated offer type bank_account is stored as bank.';
revoke execute on function internal.offer_type_alias() from public;

create trigger offers_type_alias before insert or update of offer_type on api.offers
    for each row execute function internal.offer_type_alias();

-- --- referral terms ----------------------------------------------------------------------------------------

-- A link pattern is the issuer's host, optionally with a path prefix: `www.referyourchasecard.com/`,
-- `*.sofi.com/invite/`. `*.` matches any subdomain (not the bare domain). Scheme, port, query: never
-- (links are normalised to https without a port, see internal.normalize_referral_url).
create function internal.check_referral_patterns(patterns text[]) returns boolean
language sql immutable
set search_path = pg_catalog
as $$
    select coalesce(bool_and(p ~ '^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(/[A-Za-z0-9._~!$&''()*+,;=:@%/-]*)?$'
                             and length(p) <= 300), true)
    from unnest(patterns) p
$$;
comment on function internal.check_referral_patterns(text[]) is
    'True when every pattern is a lower-case host (optionally *.host) with an optional /path prefix.';
-- evaluated as the writing role (admins) by the CHECK below
revoke execute on function internal.check_referral_patterns(text[]) from public;
grant execute on function internal.check_referral_patterns(text[]) to app_admin;

alter table api.offers
    add column referrals_accepted   boolean not null default false,
    add column referrer_reward      numeric(12, 2) check (referrer_reward >= 0),
    add column referrer_reward_unit text check (referrer_reward_unit ~ '^[A-Za-z][A-Za-z0-9 ._-]{0,39}$'),
    add column referee_reward       numeric(12, 2) check (referee_reward >= 0),
    add column referee_reward_unit  text check (referee_reward_unit ~ '^[A-Za-z][A-Za-z0-9 ._-]{0,39}$'),
    add column referrer_annual_cap  numeric(14, 2) check (referrer_annual_cap > 0),
    add column referral_link_patterns text[] not null default '{}'
        check (cardinality(referral_link_patterns) <= 20 and internal.check_referral_patterns(referral_link_patterns)),
    add column public_url           text check (public_url ~ '^https://[^\s/?#@]+(/[^\s]*)?$' and length(public_url) <= 2048),
    add constraint offers_referrer_reward_unit check (referrer_reward is null or referrer_reward_unit is not null),
    add constraint offers_referee_reward_unit check (referee_reward is null or referee_reward_unit is not null),
    add constraint offers_referral_patterns
        check (not referrals_accepted or cardinality(referral_link_patterns) > 0);

comment on column api.offers.referrals_accepted is 'Members may share referral links for this offer (needs referral_link_patterns).';
comment on column api.offers.referrer_reward is 'What the issuer pays the referrer per approved referral, in referrer_reward_unit.';
comment on column api.offers.referrer_reward_unit is 'USD, or the points program (e.g. "Chase Ultimate Rewards").';
comment on column api.offers.referee_reward is 'What the referred applicant gets, in referee_reward_unit.';
comment on column api.offers.referee_reward_unit is 'USD, or the points program.';
comment on column api.offers.referrer_annual_cap is 'The issuer''s yearly cap per referrer, in referrer_reward_unit, when known.';
comment on column api.offers.referral_link_patterns is
    'Where referral links must point: host or *.host, optionally with a /path prefix (the issuer''s own application, no shorteners).';
comment on column api.offers.public_url is 'The public, non-referral application link (https).';

create index idx_offers_referrals on api.offers (id) where referrals_accepted and status = 'active';
