-- Per-role limits so that no API request can hold the database. The gateway applies each role's settings in
-- the request's transaction (SET ROLE alone would not: PostgreSQL applies them at login only).
alter role anonymous set statement_timeout = '3s';
alter role app_user set statement_timeout = '5s';
alter role app_admin set statement_timeout = '30s';
-- A transaction left open by a client of the authenticator (a bug, a crashed process) does not hold locks.
alter role authenticator set idle_in_transaction_session_timeout = '60s';
