-- Point-in-time recovery in the backup bookkeeping: pgBackRest runs beside pg_dump runs, and WAL archiving as
-- PostgreSQL itself reports it (pg_stat_archiver), for /metrics and the dashboard. Database-side figures only:
-- the gateway reads them, it keeps no backup state of its own.

alter table internal.backup_runs
    add column kind text not null default 'dump' check (kind in ('dump', 'full', 'diff', 'incr'));
comment on column internal.backup_runs.kind is
    'dump: a logical pg_dump (portable, verifiable); full/diff/incr: a pgBackRest backup (point-in-time recovery).';

create or replace view api.backup_status with (security_invoker = true) as
    select finished_at, file, size_bytes, verified, ok, error, kind
    from internal.backup_runs order by finished_at desc limit 20;
comment on view api.backup_status is
    'Admins: the 20 latest backups (pg_dump and pgBackRest), newest first, and whether they verified.';

-- WAL archiving as the server sees it: whether it is on, the newest segment archived and the last failure.
create function internal.wal_archive_status() returns jsonb
language sql stable security definer
set search_path = pg_catalog
as $$
    select jsonb_build_object(
        'archiving', current_setting('archive_mode') <> 'off',
        'last_archived_wal', a.last_archived_wal,
        'last_archived_at', a.last_archived_time,
        'failed_count', a.failed_count,
        'last_failed_wal', a.last_failed_wal,
        'last_failed_at', a.last_failed_time)
    from pg_stat_archiver a
$$;
comment on function internal.wal_archive_status() is
    'WAL archiving (pg_stat_archiver): on or off, newest archived segment and time, failures.';
revoke execute on function internal.wal_archive_status() from public;

create or replace function internal.ops_metrics() returns jsonb
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
comment on function internal.ops_metrics() is
    'Operational gauges (failed cron runs, latest backups, WAL archiving) for /metrics.';

-- The dashboard's backup panel gains the newest pgBackRest backup and the WAL archive. The panels of 010 stay
-- where they are, renamed into the private schema; api.dashboard() adds to them.
alter function api.dashboard() set schema internal;
alter function internal.dashboard() rename to dashboard_panels;
revoke execute on function internal.dashboard_panels() from public, app_admin;
comment on function internal.dashboard_panels() is 'The panels of api.dashboard() as migration 010 made them.';

create function api.dashboard() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, internal
as $$
declare
    doc jsonb := internal.dashboard_panels();  -- refuses non-admins (internal.require_admin)
    backup jsonb := doc -> 'backup';
begin
    if jsonb_typeof(backup) is distinct from 'object' then
        backup := '{}';
    end if;
    return doc || jsonb_build_object('backup', backup || jsonb_build_object(
        'latest_pitr', (select to_jsonb(b) from internal.backup_runs b
                        where ok and kind <> 'dump' order by finished_at desc limit 1),
        'wal', internal.wal_archive_status()));
end
$$;
comment on function api.dashboard() is
    'Admins: every panel of the operational dashboard as one JSON document (offers, expiring offers, most '
    'viewed, events per day, database health, slowest statements, cron jobs, latest backup, newest pgBackRest '
    'backup and WAL archiving). Most viewed over 24 h counts raw events; 7 d and 30 d are whole UTC days from the '
    'rollups (refreshed every 5 minutes).';
revoke execute on function api.dashboard() from public;
grant execute on function api.dashboard() to app_admin;
