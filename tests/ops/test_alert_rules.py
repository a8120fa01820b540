"""The shipped Prometheus alert rules are valid and fire when they should (promtool, from Debian's `prometheus`)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "docker" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; scripts/bootstrap.sh does it)"
)

# The names the gateway's /metrics and the backup job export; the rules must use exactly these.
METRICS = {
    "referral_http_requests_total",
    "referral_http_request_duration_seconds_bucket",
    "referral_db_up",
    "referral_backup_last_success_timestamp_seconds",
    "referral_cron_failed_runs_total",
    "referral_cron_last_run_failed",
    "referral_db_pool_connections",
    "referral_wal_archiving",
    "referral_wal_last_archived_timestamp_seconds",
    "referral_read_replica_lag_seconds",
}
ALERTS = {
    "ReferralGatewayDown",
    "ReferralHighErrorRate",
    "ReferralHighLatencyP99",
    "ReferralDatabaseUnreachable",
    "ReferralCronJobFailed",
    "ReferralBackupTooOld",
    "ReferralBackupNeverSucceeded",
    "ReferralPoolWaiting",
    "ReferralCronJobLastRunFailed",
    "ReferralReplicaLagging",
    "ReferralWalArchiveStale",
}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], check=False, cwd=PROMETHEUS_DIR, capture_output=True, text=True,
                          timeout=60)


@needs_promtool
def test_promtool_accepts_the_rules():
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@needs_promtool
def test_each_alert_fires_on_its_condition_and_not_otherwise():
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_the_documented_metric_names():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == ALERTS
    used = set()
    for rule in rules:
        used |= set(re.findall(r"\breferral_[a-z_]+", rule["expr"]))
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
    assert used == METRICS
    header = RULES.read_text().split("groups:")[0]
    for name in METRICS:  # the comment at the top lists what the rules rely on
        assert name.removesuffix("_bucket") in header
