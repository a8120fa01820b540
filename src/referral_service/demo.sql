-- A small demo data set, loaded by `referral-service setup` into an empty database.
insert into api.offers (title, institution, offer_type, requirements, status, metadata) values
  ('Chase Total Checking $300 bonus', 'Chase', 'bank',
   'Open a new checking account and receive direct deposits totaling $500 or more within 90 days.',
   'active', jsonb_build_object('expiry_date', to_char(current_date + 45, 'YYYY-MM-DD'), 'bonus_tiers', jsonb_build_array(300))),
  ('Capital One Venture 75,000 miles', 'Capital One', 'credit_card',
   'Spend $4,000 on purchases within 3 months from account opening.',
   'active', jsonb_build_object('expiry_date', to_char(current_date + 5, 'YYYY-MM-DD'), 'annual_fee', 95)),
  ('SoFi Checking and Savings up to $325', 'SoFi', 'bank',
   'Set up eligible direct deposit; bonus tier depends on the total deposited.',
   'active', jsonb_build_object('expiry_date', to_char(current_date + 20, 'YYYY-MM-DD'), 'bonus_tiers', jsonb_build_array(50, 325))),
  ('Robinhood free stock', 'Robinhood', 'brokerage',
   'Open a brokerage account and link a bank account.',
   'active', '{}'),
  ('Webull 12 free stocks', 'Webull', 'brokerage',
   'Deposit any amount within 30 days of opening an account.',
   'active', jsonb_build_object('expiry_date', to_char(current_date + 3, 'YYYY-MM-DD'))),
  ('Amex Gold 90,000 points (draft)', 'American Express', 'credit_card',
   'Spend $6,000 in the first 6 months.',
   'draft', jsonb_build_object('annual_fee', 325)),
  ('Citi Premier 60,000 points', 'Citi', 'credit_card',
   'Spend $4,000 in 3 months.',
   'expired', jsonb_build_object('expiry_date', to_char(current_date - 10, 'YYYY-MM-DD')));

insert into api.analytics_events (event_type, event_data, offer_id, created_at)
select 'offer_view', jsonb_build_object('offer_id', o.id), o.id, now() - (n || ' hours')::interval
from api.offers o, generate_series(1, 40) n
where o.status = 'active' and n % (1 + length(o.institution) % 5) = 0;

-- Referral terms (issue 14) and a few members sharing their links. The demo members cannot sign in
-- (random passwords); they exist to own links.
update api.offers set referrals_accepted = true, referrer_reward = 50, referrer_reward_unit = 'USD',
    referee_reward = 300, referee_reward_unit = 'USD', referrer_annual_cap = 500,
    referral_link_patterns = '{accounts.chase.com/raf/}', public_url = 'https://personal.chase.com/personal/checking'
where title = 'Chase Total Checking $300 bonus';
update api.offers set referrals_accepted = true, referrer_reward = 20000, referrer_reward_unit = 'Capital One Miles',
    referee_reward = 75000, referee_reward_unit = 'Capital One Miles',
    referral_link_patterns = '{i.capitalone.com/}', public_url = 'https://www.capitalone.com/credit-cards/venture/'
where title = 'Capital One Venture 75,000 miles';
update api.offers set referrals_accepted = true, referrer_reward = 75, referrer_reward_unit = 'USD',
    referee_reward = 25, referee_reward_unit = 'USD', referral_link_patterns = '{www.sofi.com/invite/}'
where title = 'SoFi Checking and Savings up to $325';

insert into internal.users (email, password, created_at)
select format('member%s@demo.example', n), crypt(gen_random_uuid()::text, gen_salt('bf', 4)), now() - interval '90 days'
from generate_series(1, 4) n;

insert into api.referral_links (offer_id, owner_id, url)
select o.id, u.id, case o.institution
        when 'Chase' then 'https://accounts.chase.com/raf/share/' || upper(substr(md5(u.email), 1, 10))
        when 'Capital One' then 'https://i.capitalone.com/' || substr(md5(u.email), 1, 9)
        else 'https://www.sofi.com/invite/money?gcp=' || substr(md5(u.email), 1, 12) end
from api.offers o
join internal.users u on u.email like 'member%@demo.example'
where o.referrals_accepted and (o.institution <> 'SoFi' or u.email <> 'member4@demo.example');

-- some traffic through the rotation, then the rollups the dashboard reads
do $$
declare
    o record;
    n integer;
begin
    for o in select id from api.offers where referrals_accepted loop
        for n in 1..12 loop
            perform set_config('request.client_address', '192.0.2.' || n, true);
            perform api.referral_link(o.id, 'json');
        end loop;
    end loop;
    perform set_config('response.status', '', true);
    perform set_config('response.headers', '', true);
end
$$;
select internal.referral_refresh_stats(now() + interval '1 second');
