-- Scheduled jobs. Each is named and calls one function, so tests can call the function with their own time.
select cron.schedule('cleanup-expired-offers', '0 0 * * *', 'select api.expire_offers(current_date)');
