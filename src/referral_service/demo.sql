-- A small demo data set, loaded by `referral-service setup` into an empty database.
insert into api.offers (title, institution, offer_type, requirements, status, metadata) values
  ('Chase Total Checking $300 bonus', 'Chase', 'bank_account',
   'Open a new checking account and receive direct deposits totaling $500 or more within 90 days.',
   'active', jsonb_build_object('expiry_date', to_char(current_date + 45, 'YYYY-MM-DD'), 'bonus_tiers', jsonb_build_array(300))),
  ('Capital One Venture 75,000 miles', 'Capital One', 'credit_card',
   'Spend $4,000 on purchases within 3 months from account opening.',
   'active', jsonb_build_object('expiry_date', to_char(current_date + 5, 'YYYY-MM-DD'), 'annual_fee', 95)),
  ('SoFi Checking and Savings up to $325', 'SoFi', 'bank_account',
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
