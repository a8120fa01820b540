-- Bind parameters of the gateway's statements never reach the server log.
-- The gateway sends every client value as a bind parameter, among them the password of api.login.
-- log_statement and log_min_duration_statement print those parameters in a DETAIL line unless
-- log_parameter_max_length is 0 (and errors print them unless log_parameter_max_length_on_error is 0).
-- Role settings are applied when authenticator logs in and are kept by set_config('role', ...) / SET ROLE
-- to anonymous, app_user or app_admin: the switch changes privileges, not these session settings. Set on the
-- role rather than in postgresql.conf so that they travel with the schema to every server (Docker, a managed
-- server) while operators keep parameters in their own sessions' logs. Superuser-only: migrations run as one.
alter role authenticator set log_parameter_max_length = 0;
alter role authenticator set log_parameter_max_length_on_error = 0;
