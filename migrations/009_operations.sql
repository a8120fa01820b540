-- Operations: backup bookkeeping, routine maintenance jobs, and the gauges the gateway exports.

create table internal.backup_runs (
    id          bigint generated always as identity primary key,
    finished_at timestamptz not null default now(),
    file        text not null,
    size_bytes  bigint,
    verified    boolean not null default false,
    ok          boolean not null,
    error       text
);
comment on table internal.backup_runs is 'One row per `referral-service backup` run, written by the CLI.';
alter table internal.backup_runs enable row level security;
create policy backup_runs_admin_read on internal.backup_runs for select to app_admin using (true);
grant select on internal.backup_runs to app_admin;

create view api.backup_status with (security_invoker = true) as
    select finished_at, file, size_bytes, verified, ok, error
    from internal.backup_runs order by finished_at desc limit 20;
comment on view api.backup_status is 'Admins: the 20 latest backups, newest first, and whether they verified.';
grant select on api.backup_status to app_admin;

-- VACUUM cannot run inside a function (it refuses transaction blocks), so this job is the one that runs
-- a statement rather than calling a function.
select cron.schedule('vacuum-busy-tables', '17 3 * * *', 'VACUUM (ANALYZE) api.offers, api.analytics_events');

-- Gauges for the gateway's /metrics (PGRST-independent; the gateway calls this only if configured to).
-- The authenticator may call it; API roles may not.
create function internal.ops_metrics() returns jsonb
language sql stable security definer
set search_path = pg_catalog, internal, cron
as $$
    select jsonb_build_object(
        -- per job, all failed runs still in cron.job_run_details (Prometheus' increase() copes with purges)
        'referral_cron_failed_runs_total',
            (select coalesce(jsonb_object_agg(j.jobname, (select count(*) from cron.job_run_details d
                                                          where d.jobid = j.jobid and d.status = 'failed')), '{}')
             from cron.job j where j.jobname is not null),
        'referral_backup_last_success_timestamp_seconds',
            coalesce((select extract(epoch from max(finished_at)) from internal.backup_runs where ok), 0),
        'referral_backup_last_verified_timestamp_seconds',
            coalesce((select extract(epoch from max(finished_at)) from internal.backup_runs where ok and verified), 0)
    )
$$;
comment on function internal.ops_metrics() is 'Operational gauges (failed cron runs, latest backups) for /metrics.';
revoke execute on function internal.ops_metrics() from public;
grant usage on schema internal to authenticator;
grant execute on function internal.ops_metrics() to authenticator;
