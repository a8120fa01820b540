-- The operations dashboard, readable at a glance (issue 15): one status from explicit rules shared with the
-- Prometheus alerts, database health by connection state, locks and dead tuples, a minute-by-minute history
-- sampled by pg_cron, capped lists, statement texts for admins without maintenance, bookkeeping or secrets.
-- api.dashboard() is rebuilt from small panel functions; the older panel functions of 010/022 are dropped.

-- --- roles ----------------------------------------------------------------------------------------------
-- Statement texts of other roles (pg_stat_statements), other sessions' states (pg_stat_activity) and the
-- replicas (pg_stat_replication) are shown only to superusers and members of pg_read_all_stats. The functions
-- below run as their owner, the role running the migrations: a superuser needs nothing; any other owner is
-- granted pg_read_all_stats here if it may grant it, else an administrator runs once
-- `grant pg_read_all_stats to <owner>` (docs/operations.md, "The dashboard").
do $$
begin
    if not pg_has_role(current_user, 'pg_read_all_stats', 'usage') then
        begin
            execute format('grant pg_read_all_stats to %I', current_user);
        exception when insufficient_privilege then
            raise warning 'the dashboard needs `grant pg_read_all_stats to %` (run it once as a superuser): '
                          'until then statement texts show as <insufficient privilege>', current_user;
        end;
    end if;
end
$$;

-- --- the rules ------------------------------------------------------------------------------------------
-- One place for the numbers: the dashboard evaluates its status with them and docker/prometheus/alerts.yml
-- uses the same ones (tests/db/test_dashboard_status.py compares both).
create function internal.status_thresholds() returns jsonb
language sql immutable
set search_path = pg_catalog
as $$
    select jsonb_build_object(
        'error_ratio', 0.05,             -- 5xx share of requests (ReferralHighErrorRate)
        'error_min_rps', 1,              -- ... when there are more than 1 request/s (a single night error is quiet)
        'p99_seconds', 0.5,              -- ReferralHighLatencyP99
        'pool_waiting', 0,               -- requests waiting for a pooled connection (ReferralPoolWaiting)
        'backup_max_age_seconds', 86400, -- newest good backup (ReferralBackupTooOld)
        'wal_max_age_seconds', 900,      -- newest archived WAL segment when archiving is on (ReferralWalArchiveStale)
        'replica_max_lag_seconds', 300)  -- replay lag of the slowest replica (ReferralReplicaLagging)
$$;
comment on function internal.status_thresholds() is
    'The thresholds of the dashboard''s status rules, the same as the Prometheus alerts''.';
revoke execute on function internal.status_thresholds() from public;

-- The database-side rules (the service-side ones, 5xx/p99/pool, need the gateway's /metrics and are
-- evaluated by the page with the same thresholds). Each check: {rule, state: ok|degraded, message}.
create function internal.status_checks(as_of timestamptz) returns jsonb
language plpgsql stable
set search_path = pg_catalog, internal, cron
as $$
declare
    t jsonb := internal.status_thresholds();
    checks jsonb := '[]';
    failed text;
    newest timestamptz;
    wal jsonb := internal.wal_archive_status();
    lag double precision;
begin
    -- a job whose newest run failed stays red until a run succeeds (ReferralCronJobLastRunFailed)
    select string_agg(format('%s failed at %s', j.jobname, to_char(r.start_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                      '; ' order by j.jobname)
      into failed
    from cron.job j
    cross join lateral (select status, start_time from cron.job_run_details d where d.jobid = j.jobid
                        order by d.runid desc limit 1) r
    where r.status = 'failed';
    checks := checks || jsonb_build_object('rule', 'cron', 'state', case when failed is null then 'ok' else 'degraded' end,
                                           'message', coalesce('job ' || failed, 'every job''s newest run succeeded'));

    select max(finished_at) into newest from internal.backup_runs where ok;
    checks := checks || jsonb_build_object('rule', 'backup',
        'state', case when newest is not null and as_of - newest <= make_interval(secs => (t ->> 'backup_max_age_seconds')::int)
                      then 'ok' else 'degraded' end,
        'message', case when newest is null then 'no successful backup on record'
                        else format('newest good backup %s h old', round(extract(epoch from as_of - newest)::numeric / 3600, 1)) end);

    if (wal ->> 'archiving')::boolean then
        newest := (wal ->> 'last_archived_at')::timestamptz;
        checks := checks || jsonb_build_object('rule', 'wal',
            'state', case when newest is not null and as_of - newest <= make_interval(secs => (t ->> 'wal_max_age_seconds')::int)
                          then 'ok' else 'degraded' end,
            'message', case when newest is null then 'WAL archiving is on but nothing was archived yet'
                            else format('newest archived WAL segment %s min old', round(extract(epoch from as_of - newest)::numeric / 60, 1)) end);
    end if;

    if exists (select from pg_stat_replication) then
        select max(extract(epoch from coalesce(replay_lag, interval '0'))) into lag from pg_stat_replication;
        checks := checks || jsonb_build_object('rule', 'replicas',
            'state', case when lag <= (t ->> 'replica_max_lag_seconds')::numeric then 'ok' else 'degraded' end,
            'message', format('slowest replica %s s behind', round(lag::numeric, 1)));
    end if;
    return checks;
end
$$;
comment on function internal.status_checks(timestamptz) is
    'The database-side status rules (cron, backup age, WAL archive age, replica lag) at a reference time.';
revoke execute on function internal.status_checks(timestamptz) from public;

-- The gauges for /metrics gain what the new alert needs: each job's newest run. (Replica lag is the gateway's
-- own gauge, referral_replica_lag_seconds{replica}, from its replica health checks.)
create or replace function internal.ops_metrics() returns jsonb
language sql stable security definer
set search_path = pg_catalog, internal, cron
as $$
    select jsonb_build_object(
        'referral_cron_failed_runs_total',
            (select coalesce(jsonb_object_agg(j.jobname, (select count(*) from cron.job_run_details d
                                                          where d.jobid = j.jobid and d.status = 'failed')), '{}')
             from cron.job j where j.jobname is not null),
        'referral_cron_last_run_failed',
            (select coalesce(jsonb_object_agg(j.jobname, coalesce(
                 (select (d.status = 'failed')::int from cron.job_run_details d where d.jobid = j.jobid
                  order by d.runid desc limit 1), 0)), '{}')
             from cron.job j where j.jobname is not null),
        'referral_backup_last_success_timestamp_seconds',
            coalesce((select extract(epoch from max(finished_at)) from internal.backup_runs where ok), 0),
        'referral_backup_last_verified_timestamp_seconds',
            coalesce((select extract(epoch from max(finished_at)) from internal.backup_runs where ok and verified), 0),
        'referral_backup_last_pitr_timestamp_seconds',
            coalesce((select extract(epoch from max(finished_at)) from internal.backup_runs
                      where ok and kind <> 'dump'), 0),
        'referral_wal_archiving', (select case when current_setting('archive_mode') <> 'off' then 1 else 0 end),
        'referral_wal_last_archived_timestamp_seconds',
            coalesce((select extract(epoch from last_archived_time) from pg_stat_archiver), 0),
        'referral_wal_archive_failures_total', (select failed_count from pg_stat_archiver)
    )
$$;

-- --- history --------------------------------------------------------------------------------------------
-- One row a minute (job sample-ops), kept 48 hours: the dashboard's last-hour and last-24-hour charts come
-- from here, so they survive a browser refresh and a gateway restart. Counters are stored raw and rates are
-- computed against the previous sample (a statistics reset gives null, never a negative rate).
create table internal.ops_samples (
    sampled_at         timestamptz primary key,
    active             integer not null,
    idle               integer not null,
    idle_in_xact       integer not null,
    waiting_locks      integer not null,
    longest_xact_s     double precision,
    xacts              bigint not null,   -- xact_commit + xact_rollback of this database (counter)
    blks_hit           bigint not null,
    blks_read          bigint not null,
    tps                double precision,  -- transactions/s since the previous sample
    cache_hit_ratio    double precision,  -- over the same interval
    size_bytes         bigint not null
);
comment on table internal.ops_samples is 'Database health sampled every minute by internal.sample_ops (48 h kept).';
alter table internal.ops_samples enable row level security;  -- no policy: definer functions only

-- Connections of this database by state (client backends only) and the longest open transaction.
create function internal.connection_states() returns jsonb
language sql stable
set search_path = pg_catalog
as $$
    select jsonb_build_object(
        'active', count(*) filter (where state = 'active'),
        'idle', count(*) filter (where state = 'idle'),
        'idle_in_transaction', count(*) filter (where state like 'idle in transaction%'),
        'longest_xact_s', round(max(extract(epoch from now() - xact_start))
                                filter (where pid <> pg_backend_pid())::numeric, 1),
        'longest_xact_state', (select state from pg_stat_activity a2 where a2.datname = current_database()
                               and a2.backend_type = 'client backend' and a2.pid <> pg_backend_pid()
                               and a2.xact_start is not null order by a2.xact_start limit 1),
        'waiting_locks', (select count(*) from pg_locks l where not l.granted
                          and l.database is not distinct from (select oid from pg_database where datname = current_database())))
    from pg_stat_activity
    where datname = current_database() and backend_type = 'client backend'
$$;
comment on function internal.connection_states() is
    'Client connections of this database by state, the longest open transaction and waiting locks.';
revoke execute on function internal.connection_states() from public;

create function internal.sample_ops(as_of timestamptz) returns void
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    c jsonb := internal.connection_states();
    d record;
    prev internal.ops_samples;
    seconds double precision;
begin
    select xact_commit + xact_rollback as xacts, blks_hit, blks_read into d
    from pg_stat_database where datname = current_database();
    select * into prev from internal.ops_samples where sampled_at < as_of order by sampled_at desc limit 1;
    seconds := extract(epoch from as_of - prev.sampled_at);
    insert into internal.ops_samples (sampled_at, active, idle, idle_in_xact, waiting_locks, longest_xact_s,
                                      xacts, blks_hit, blks_read, tps, cache_hit_ratio, size_bytes)
    values (as_of, (c ->> 'active')::int, (c ->> 'idle')::int, (c ->> 'idle_in_transaction')::int,
            (c ->> 'waiting_locks')::int, (c ->> 'longest_xact_s')::double precision,
            d.xacts, d.blks_hit, d.blks_read,
            case when seconds > 0 and d.xacts >= prev.xacts then (d.xacts - prev.xacts) / seconds end,
            case when d.blks_hit >= prev.blks_hit and d.blks_read >= prev.blks_read
                      and (d.blks_hit - prev.blks_hit) + (d.blks_read - prev.blks_read) > 0
                 then (d.blks_hit - prev.blks_hit)::double precision
                      / ((d.blks_hit - prev.blks_hit) + (d.blks_read - prev.blks_read)) end,
            pg_database_size(current_database()))
    on conflict (sampled_at) do nothing;
    delete from internal.ops_samples where sampled_at < as_of - interval '48 hours';
end
$$;
comment on function internal.sample_ops(timestamptz) is
    'Record one sample of database health at as_of and drop samples older than 48 hours.';
revoke execute on function internal.sample_ops(timestamptz) from public;

select cron.schedule('sample-ops', '* * * * *', 'select internal.sample_ops(now())');

-- The last hour minute by minute, and the last 24 hours in 15-minute averages (96 points at most).
create function internal.ops_history(as_of timestamptz) returns jsonb
language sql stable
set search_path = pg_catalog, internal
as $$
    select jsonb_build_object(
        'hour', (select coalesce(jsonb_agg(jsonb_build_object(
                     't', sampled_at, 'tps', round(tps::numeric, 2), 'connections', active + idle + idle_in_xact,
                     'active', active, 'waiting_locks', waiting_locks,
                     'cache_hit_ratio', round(cache_hit_ratio::numeric, 4)) order by sampled_at), '[]')
                 from internal.ops_samples where sampled_at > as_of - interval '1 hour' and sampled_at <= as_of),
        'day', (select coalesce(jsonb_agg(jsonb_build_object(
                    't', b, 'tps', round(tps::numeric, 2), 'connections', round(connections::numeric, 1),
                    'active', round(active::numeric, 1), 'waiting_locks', waiting_locks,
                    'cache_hit_ratio', round(cache_hit_ratio::numeric, 4)) order by b), '[]')
                from (select date_bin('15 minutes', sampled_at, '2000-01-01') as b, avg(tps) as tps,
                             avg(active + idle + idle_in_xact) as connections, avg(active) as active,
                             max(waiting_locks) as waiting_locks, avg(cache_hit_ratio) as cache_hit_ratio
                      from internal.ops_samples
                      where sampled_at > as_of - interval '24 hours' and sampled_at <= as_of group by 1) s))
$$;
comment on function internal.ops_history(timestamptz) is 'The dashboard''s history charts from internal.ops_samples.';
revoke execute on function internal.ops_history(timestamptz) from public;

-- --- statements -----------------------------------------------------------------------------------------
-- pg_stat_statements shows other roles' statement texts only to superusers and pg_read_all_stats, and a
-- function called from a view runs as the caller: hence "<insufficient privilege>" before. This definer
-- function (owner: see the grant at the top) returns what the API's clients ran, and nothing else:
--   * statements run as an API role (the gateway switches to anonymous/app_user/app_admin), so migrations,
--     VACUUM, pg_cron jobs, backups and an operator's psql (other roles) are left out;
--   * top-level statements only (with track = all, the bodies of functions would repeat their caller);
--   * not the dashboard's own document, nor the session check every request runs first (bookkeeping);
--   * data statements only: utility statements (ALTER ROLE ... PASSWORD, SET) keep their literals, so they
--     never appear; nor does any text naming the secrets table or a password/secret setting.
-- The texts are pg_stat_statements' normalised ones: constants and bind parameters show as $1, $2.
do $$
declare
    ext_schema name := (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                        where e.extname = 'pg_stat_statements');
begin
    execute format($f$
        create function internal.statement_stats() returns table (
            query text, calls bigint, total_exec_time double precision, mean_exec_time double precision,
            rows bigint, role name)
        language sql stable security definer
        set search_path = pg_catalog
        as $body$
            select s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.rows, r.rolname
            from %I.pg_stat_statements(true) s
            join pg_roles r on r.oid = s.userid
            where s.dbid = (select oid from pg_database where datname = current_database())
              and s.toplevel
              and r.rolname in ('anonymous', 'app_user', 'app_admin')
              and s.query ~* '^\s*(with|select|insert|update|delete|table|values)\M'
              and s.query !~* '(internal\.secrets|\mpassword\s*=|jwt_secret|alter\s+(role|user)|pgp_sym|\mset_config\s*\()'
              -- (set_config: the gateway's per-request settings; normalised, every name in it is $n)
              and s.query !~* '(api\.dashboard|dashboard_events_per_day|internal\.ops_metrics|statement_stats|query_stats|auth\.check_session)'
        $body$ $f$, ext_schema);
end
$$;
comment on function internal.statement_stats() is
    'What the API''s clients ran (pg_stat_statements, normalised texts), without maintenance, bookkeeping or secrets.';
revoke execute on function internal.statement_stats() from public;
grant execute on function internal.statement_stats() to app_admin;

-- Same columns as before plus the role; still admins only. The view keeps its owner's rights (the catalog
-- test lists it): the function it calls is what needs them.
create or replace view api.query_stats as
    select query, calls, total_exec_time, mean_exec_time, rows, role
    from internal.statement_stats()
    order by total_exec_time desc
    limit 100;
comment on view api.query_stats is
    'Admins: the 100 statements of API clients with the most total execution time (pg_stat_statements; '
    'no maintenance, bookkeeping or secrets).';

-- --- the document ---------------------------------------------------------------------------------------
-- Lists carry their full count beside the first rows, so the page can say "and N more".
create function internal.expiring_offers(cap integer) returns jsonb
language sql stable
set search_path = pg_catalog, api
as $$
    select jsonb_build_object(
        'total', (select count(*) from api.offers
                  where status = 'active' and expires_on between current_date and current_date + 7),
        'items', (select coalesce(jsonb_agg(jsonb_build_object(
                      'id', id, 'title', title, 'institution', institution, 'offer_type', offer_type,
                      'expires_on', expires_on, 'days_left', expires_on - current_date)
                      order by expires_on, title), '[]')
                  from (select * from api.offers
                        where status = 'active' and expires_on between current_date and current_date + 7
                        order by expires_on, title limit cap) o))  -- idx_offers_active_expiry
$$;
comment on function internal.expiring_offers(integer) is 'Active offers expiring within 7 days: the count and the first `cap`.';
revoke execute on function internal.expiring_offers(integer) from public;

create function internal.database_panel() returns jsonb
language sql stable
set search_path = pg_catalog, internal
as $$
    select jsonb_build_object(
        'name', d.datname,
        'size_bytes', pg_database_size(d.datid),
        'connections', d.numbackends,
        'max_connections', current_setting('max_connections')::integer,
        'by_state', internal.connection_states(),
        'commits', d.xact_commit,
        'rollbacks', d.xact_rollback,
        'tps', (select round(tps::numeric, 2) from internal.ops_samples order by sampled_at desc limit 1),
        'cache_hit_ratio', case when d.blks_hit + d.blks_read > 0
                                then round(d.blks_hit::numeric / (d.blks_hit + d.blks_read), 4) end,
        'dead_tuples', (select coalesce(jsonb_agg(jsonb_build_object(
                            'table', schemaname || '.' || relname, 'dead', n_dead_tup, 'live', n_live_tup,
                            'last_autovacuum', last_autovacuum) order by n_dead_tup desc), '[]')
                        from (select * from pg_stat_user_tables where n_dead_tup > 0
                              order by n_dead_tup desc limit 5) t),
        'stats_reset', d.stats_reset)
    from pg_stat_database d where d.datname = current_database()
$$;
comment on function internal.database_panel() is 'The dashboard''s database panel.';
revoke execute on function internal.database_panel() from public;

create function internal.jobs_panel() returns jsonb
language sql stable
set search_path = pg_catalog, cron
as $$
    select coalesce(jsonb_agg(jsonb_build_object(
               'jobid', j.jobid, 'name', j.jobname, 'schedule', j.schedule, 'active', j.active,
               'failed_24h', (select count(*) from cron.job_run_details f where f.jobid = j.jobid
                              and f.status = 'failed' and f.start_time > now() - interval '24 hours'),
               'last_run', case when r.runid is not null then jsonb_build_object(
                   'status', r.status, 'start_time', r.start_time, 'end_time', r.end_time,
                   'duration_ms', round(extract(epoch from r.end_time - r.start_time)::numeric * 1000, 1),
                   'message', left(r.return_message, 300)) end)
               order by j.jobname), '[]')
    from cron.job j
    -- the newest run of each job, found backwards along the runid key
    left join lateral (select * from cron.job_run_details x where x.jobid = j.jobid
                       order by x.runid desc limit 1) r on true
$$;
comment on function internal.jobs_panel() is 'Each pg_cron job with its newest run and its failures in the last 24 h.';
revoke execute on function internal.jobs_panel() from public;

create function internal.backup_panel() returns jsonb
language sql stable
set search_path = pg_catalog, internal
as $$
    select jsonb_build_object(
        'latest', (select to_jsonb(b) - 'id' from internal.backup_runs b order by finished_at desc limit 1),
        'latest_good', (select max(finished_at) from internal.backup_runs where ok),
        'latest_verified', (select max(finished_at) from internal.backup_runs where ok and verified),
        'latest_pitr', (select to_jsonb(b) - 'id' from internal.backup_runs b
                        where ok and kind <> 'dump' order by finished_at desc limit 1),
        'wal', internal.wal_archive_status())
$$;
comment on function internal.backup_panel() is 'The newest backup, the newest good, verified and pgBackRest ones, WAL archiving.';
revoke execute on function internal.backup_panel() from public;

-- Referral links (issue 14) add internal.referral_dashboard(); until it exists the key is null and the
-- page says "not available". Called through EXECUTE so that this function compiles without it.
create function internal.referrals_panel() returns jsonb
language plpgsql stable
set search_path = pg_catalog, internal
as $$
declare
    doc jsonb;
begin
    if to_regprocedure('internal.referral_dashboard()') is null then
        return null;
    end if;
    execute 'select internal.referral_dashboard()::jsonb' into doc;
    return doc;
end
$$;
comment on function internal.referrals_panel() is 'internal.referral_dashboard() when referral links are installed, else null.';
revoke execute on function internal.referrals_panel() from public;

drop function api.dashboard();
drop function internal.dashboard_panels();

create function api.dashboard() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, internal, api
as $$
declare
    today date := internal.utc_day(now());
begin
    perform internal.require_admin();
    return jsonb_build_object(
        'generated_at', now(),
        'rollups_as_of', (select last_rolled_up_to from internal.rollup_state),
        'status', jsonb_build_object('checks', internal.status_checks(now()),
                                     'thresholds', internal.status_thresholds()),
        'offers', jsonb_build_object(
            'total', (select count(*) from api.offers),
            'by_status', (select coalesce(jsonb_object_agg(status, n), '{}') from
                          (select status, count(*) as n from api.offers group by status) s),
            'by_type', (select coalesce(jsonb_object_agg(offer_type, n), '{}') from
                        (select offer_type, count(*) as n from api.offers group by offer_type) t)),
        'expiring_soon', internal.expiring_offers(8),
        'most_viewed', jsonb_build_object(
            '24h', (select coalesce(jsonb_agg(jsonb_build_object('offer_id', v.offer_id, 'title', o.title,
                                                                'institution', o.institution, 'views', v.views)
                                              order by v.views desc, o.title), '[]')
                    from (select offer_id, count(*) as views from api.analytics_events
                          where created_at >= now() - interval '24 hours' and event_type = 'offer_view'
                            and offer_id is not null
                          group by offer_id order by 2 desc limit 5) v
                    join api.offers o on o.id = v.offer_id),
            '7d', internal.most_viewed_since(today - 6, 5),
            '30d', internal.most_viewed_since(today - 29, 5)),
        'events_per_day', api.dashboard_events_per_day(30),
        'database', internal.database_panel(),
        'history', internal.ops_history(now()),
        'slowest_statements', (
            select coalesce(jsonb_agg(jsonb_build_object(
                       'query', left(q.query, 300), 'calls', q.calls, 'rows', q.rows, 'role', q.role,
                       'mean_ms', round(q.mean_exec_time::numeric, 3),
                       'total_ms', round(q.total_exec_time::numeric, 1))
                       order by q.mean_exec_time desc), '[]')
            from (select * from internal.statement_stats() order by mean_exec_time desc limit 5) q),
        'jobs', internal.jobs_panel(),
        'backup', internal.backup_panel(),
        'referrals', internal.referrals_panel());
end
$$;
comment on function api.dashboard() is
    'Admins: every panel of the operational dashboard as one JSON document: status checks and thresholds, '
    'offers, expiring offers (count and first rows), most viewed, events per day, database health and its '
    'history (sampled every minute), slowest statements of API clients, cron jobs, backups and WAL archiving, '
    'referral links when installed. Most viewed over 24 h counts raw events; 7 d and 30 d are whole UTC days '
    'from the rollups.';
revoke execute on function api.dashboard() from public;
grant execute on function api.dashboard() to app_admin;
