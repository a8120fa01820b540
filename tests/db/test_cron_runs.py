"""pg_cron really runs jobs in this cluster (background workers; no password-less login needed)."""

import time

import psycopg
import pytest


@pytest.mark.slow
def test_a_scheduled_job_runs_within_a_minute(app_db_url):
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("create table if not exists public.cron_probe (ran_at timestamptz)")
        job = conn.execute("select cron.schedule('probe-runs', '* * * * *',"
                           " 'insert into public.cron_probe values (now())')").fetchone()[0]
        try:
            deadline = time.monotonic() + 75
            while time.monotonic() < deadline:
                runs = conn.execute("select status, return_message from cron.job_run_details where jobid = %s",
                                    [job]).fetchall()
                if runs and runs[0][0] != "starting":  # pg_cron records 'starting' before the worker runs it
                    break
                time.sleep(1)
            assert runs and runs[0][0] in ("running", "succeeded"), runs
            time.sleep(1)
            assert conn.execute("select count(*) from public.cron_probe").fetchone()[0] >= 1
        finally:
            conn.execute("select cron.unschedule(%s)", [job])
            conn.execute("drop table public.cron_probe")
