-- The seed's monitoring views, for admins only.
-- These two views run with their owner's rights (not security_invoker): reading every role's
-- statistics needs them, and the grant below limits them to app_admin.

create view api.query_stats as
    select query, calls, total_exec_time, mean_exec_time, rows
    from pg_stat_statements
    order by total_exec_time desc
    limit 100;
comment on view api.query_stats is 'Admins: the 100 statements with the most total execution time (pg_stat_statements).';
revoke all on api.query_stats from public;
grant select on api.query_stats to app_admin;

create view api.db_stats as
    select datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit,
           tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
    from pg_stat_database;
comment on view api.db_stats is 'Admins: per-database activity counters (pg_stat_database).';
revoke all on api.db_stats from public;
grant select on api.db_stats to app_admin;
