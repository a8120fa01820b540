"""The dashboard's status rules (and their agreement with the Prometheus alerts), the minute samples behind
its history charts, and the statements view as each role."""

import datetime as dt
import re
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.conftest import act_as

RULES = Path(__file__).resolve().parents[2] / "docker" / "prometheus" / "alerts.yml"
T0 = dt.datetime(2030, 3, 1, 12, 0, tzinfo=dt.UTC)

# alert → (threshold key, the number in its expression)
AGREEMENT = {
    "ReferralHighErrorRate": ("error_ratio", r"\)\s*>\s*([0-9.]+)"),
    "ReferralHighLatencyP99": ("p99_seconds", r">\s*([0-9.]+)"),
    "ReferralPoolWaiting": ("pool_waiting", r">\s*([0-9.]+)"),
    "ReferralBackupTooOld": ("backup_max_age_seconds", r">\s*([0-9.]+)"),
    "ReferralWalArchiveStale": ("wal_max_age_seconds", r">\s*([0-9.]+)"),
    "ReferralReplicaLagging": ("replica_max_lag_seconds", r">\s*([0-9.]+)"),
}


def test_status_thresholds_agree_with_the_alert_rules(db):
    thresholds = db.execute("select internal.status_thresholds()").fetchone()[0]
    rules = {r["alert"]: r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    for alert, (key, pattern) in AGREEMENT.items():
        assert float(re.search(pattern, rules[alert]).group(1)) == thresholds[key], alert
    min_rps = re.search(r"\[5m\]\)\)\s*>\s*([0-9.]+)\s*$", rules["ReferralHighErrorRate"].strip())
    assert float(min_rps.group(1)) == thresholds["error_min_rps"]


def checks(db, as_of="now()"):
    return {c["rule"]: c for c in db.execute(f"select internal.status_checks({as_of})").fetchone()[0]}


@pytest.fixture
def quiet(db):
    """No backups and no job runs on record (rolled back with the test)."""
    db.execute("delete from internal.backup_runs")
    db.execute("delete from cron.job_run_details")
    return db


def test_backup_age_rule(quiet):
    db = quiet
    assert checks(db)["backup"]["state"] == "degraded" and "no successful backup" in checks(db)["backup"]["message"]
    db.execute("insert into internal.backup_runs (finished_at, file, ok) values (now() - interval '2 hours', 'a', true)")
    assert checks(db)["backup"]["state"] == "ok"
    db.execute("insert into internal.backup_runs (finished_at, file, ok) values (now(), 'b', false)")  # failed: no help
    assert checks(db, "now() + interval '23 hours'")["backup"]["state"] == "degraded"


def test_failed_job_rule_stays_until_a_run_succeeds(quiet):
    db = quiet
    job = db.execute("select jobid from cron.job where jobname = 'refresh-rollups'").fetchone()[0]

    def run(status, minutes_ago):
        db.execute("insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status,"
                   " return_message, start_time, end_time) values (%s, nextval('cron.runid_seq'), 1, 'x', 'x', 'x',"
                   " %s, 'boom', now() - make_interval(mins => %s), now() - make_interval(mins => %s))",
                   [job, status, minutes_ago, minutes_ago])

    assert checks(db)["cron"]["state"] == "ok"
    run("failed", 300)  # hours ago: still red, the job has not succeeded since
    cron = checks(db)["cron"]
    assert cron["state"] == "degraded" and "refresh-rollups failed" in cron["message"]
    metrics = db.execute("select internal.ops_metrics()").fetchone()[0]
    assert metrics["referral_cron_last_run_failed"]["refresh-rollups"] == 1  # what the alert reads
    run("succeeded", 1)
    assert checks(db)["cron"]["state"] == "ok"
    assert db.execute("select internal.ops_metrics()").fetchone()[0]["referral_cron_last_run_failed"][
        "refresh-rollups"] == 0


def test_wal_and_replica_rules_apply_only_when_there_is_something_to_check(db):
    # the test server archives no WAL and has no replica: neither rule is listed (not a false "ok")
    assert set(checks(db)) == {"cron", "backup"}


# --- samples ----------------------------------------------------------------------------------------------

@pytest.fixture
def samples(db):
    db.execute("delete from internal.ops_samples")
    return db


def sample(db, at):
    db.execute("select internal.sample_ops(%s)", [at])


def test_sampling_records_rates_against_the_previous_sample(samples):
    db = samples
    sample(db, T0)
    db.execute("select txid_current()")  # some transactions between the samples
    sample(db, T0 + dt.timedelta(minutes=1))
    rows = db.execute("select tps, active, xacts, size_bytes from internal.ops_samples order by sampled_at").fetchall()
    assert rows[0][0] is None  # no previous sample: no rate
    assert rows[1][0] is not None and rows[1][0] >= 0 and rows[1][1] >= 1 and rows[1][3] > 0
    # a statistics reset (counters lower than before) gives no rate rather than a negative one
    db.execute("update internal.ops_samples set xacts = xacts + 10^12 where sampled_at = %s", [T0 + dt.timedelta(minutes=1)])
    sample(db, T0 + dt.timedelta(minutes=2))
    assert db.execute("select tps from internal.ops_samples where sampled_at = %s",
                      [T0 + dt.timedelta(minutes=2)]).fetchone()[0] is None


def test_samples_are_kept_48_hours_and_feed_the_history(samples):
    db = samples
    for minutes in range(0, 24 * 60 * 3, 30):  # three days, every 30 minutes
        sample(db, T0 + dt.timedelta(minutes=minutes))
    end = T0 + dt.timedelta(minutes=24 * 60 * 3 - 30)
    oldest = db.execute("select min(sampled_at) from internal.ops_samples").fetchone()[0]
    assert end - oldest <= dt.timedelta(hours=48)
    history = db.execute("select internal.ops_history(%s)", [end]).fetchone()[0]
    assert len(history["hour"]) == 2  # the samples of the last hour
    assert len(history["day"]) == 48  # 24 h in 15-minute buckets, one sample each 30 minutes
    assert {"t", "tps", "connections", "active", "waiting_locks", "cache_hit_ratio"} <= set(history["hour"][0])


def test_the_history_survives_a_new_session(app_db_url):
    """Samples live in a table: a new connection (a restarted gateway, a reloaded page) sees them."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.sample_ops(now() - interval '1 minute')")
    with psycopg.connect(app_db_url) as conn:
        act_as(conn, "app_admin")
        assert conn.execute("select api.dashboard()").fetchone()[0]["history"]["hour"]


# --- statements -------------------------------------------------------------------------------------------

MARK = "dashboard_statement_probe"


def statements(db):
    return [r[0] for r in db.execute("select query from api.query_stats")]


def test_admins_see_statement_texts_of_api_clients_only(db):
    db.execute(f"select 1 as {MARK}_maintenance")  # run as the owner: maintenance, left out
    db.execute("alter role app_user set statement_timeout = '31s'")  # a utility statement with a literal
    for role in ("app_user", "anonymous"):
        act_as(db, role)
        db.execute(f"select count(*) as {MARK}_{role} from api.offers")
        db.execute("reset role")
    act_as(db, "app_admin")
    db.execute("select api.dashboard()")  # the dashboard's own call: bookkeeping
    texts = statements(db)
    assert not any("<insufficient privilege>" in t for t in texts)
    assert any(f"{MARK}_app_user" in t for t in texts) and any(f"{MARK}_anonymous" in t for t in texts)
    assert not any(f"{MARK}_maintenance" in t for t in texts)
    assert not any(re.search(r"alter\s+role|api\.dashboard|internal\.secrets|set_config", t, re.I) for t in texts)
    doc = db.execute("select api.dashboard()").fetchone()[0]
    assert not any("api.dashboard" in q["query"] for q in doc["slowest_statements"])


def test_statement_texts_are_normalised(db):
    act_as(db, "app_user")
    db.execute(f"select count(*) as {MARK}_literal from api.offers where title = 'hunter2-secret-literal'")
    db.execute("reset role")
    act_as(db, "app_admin")
    texts = [t for t in statements(db) if f"{MARK}_literal" in t]
    assert texts and not any("hunter2" in t for t in texts)


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
@pytest.mark.parametrize("call", ["select * from api.query_stats", "select * from internal.statement_stats()"])
def test_non_admins_get_no_statements(db, role, call):
    act_as(db, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute(call)
