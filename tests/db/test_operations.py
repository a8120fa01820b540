"""Maintenance jobs, event retention, backup bookkeeping and the ops gauges."""

import datetime as dt

import psycopg
import pytest

from tests.conftest import act_as
from tests.db.test_offers import add_offer

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def add_event(db, offer, at):
    db.execute("insert into api.analytics_events (event_type, event_data, offer_id, created_at)"
               " values ('offer_view', jsonb_build_object('offer_id', %s::text), %s, %s)", [offer, offer, at])


@pytest.fixture
def events(db):
    db.execute("delete from api.analytics_events")
    db.execute("update internal.rollup_state set last_rolled_up_to = null")
    offer = add_offer(db)
    for days_ago in (400, 100, 40, 3, 0):
        add_event(db, offer, NOW - dt.timedelta(days=days_ago, hours=1))
    return offer


def count(db):
    return db.execute("select count(*) from api.analytics_events").fetchone()[0]


def test_retention_is_off_by_default(db, events):
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    assert db.execute("select internal.purge_events(%s)", [NOW]).fetchone()[0] == 0
    assert count(db) == 5


def test_retention_deletes_only_old_and_rolled_up_events(db, events):
    db.execute("select internal.set_event_retention(30)")
    # nothing is rolled up yet: nothing may go
    assert db.execute("select internal.purge_events(%s)", [NOW]).fetchone()[0] == 0
    # rolled up to 50 days ago: only events before that watermark and older than 30 days go
    db.execute("select internal.refresh_rollups(%s)", [NOW - dt.timedelta(days=50)])
    assert db.execute("select internal.purge_events(%s)", [NOW]).fetchone()[0] == 2
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    assert db.execute("select internal.purge_events(%s)", [NOW]).fetchone()[0] == 1
    assert count(db) == 2


def test_rollup_counts_survive_retention(db, events):
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    before = db.execute("select sum(views) from internal.offer_view_daily").fetchone()[0]
    db.execute("select internal.set_event_retention(1)")
    db.execute("select internal.purge_events(%s)", [NOW])
    db.execute("select internal.refresh_rollups(%s)", [NOW + dt.timedelta(minutes=5)])
    assert db.execute("select sum(views) from internal.offer_view_daily").fetchone()[0] == before


def test_retention_setting_is_checked(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="at least 1 day"):
        db.execute("select internal.set_event_retention(0)")


@pytest.mark.parametrize("job, command", [
    ("vacuum-busy-tables", "VACUUM (ANALYZE) api.offers, api.analytics_events"),
    ("purge-old-events", "select internal.purge_events(now())"),
])
def test_maintenance_jobs_registered(db, job, command):
    assert db.execute("select command from cron.job where jobname = %s", [job]).fetchone() == (command,)


def test_backup_status_admin_only(db):
    db.execute("insert into internal.backup_runs (file, size_bytes, verified, ok) values ('a.dump', 10, true, true)")
    act_as(db, "app_admin")
    assert db.execute("select file, verified, ok from api.backup_status").fetchone() == ("a.dump", True, True)
    for role in ("anonymous", "app_user"):
        db.rollback()
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select * from api.backup_status")


def test_ops_metrics_for_authenticator_only(db):
    db.execute("insert into internal.backup_runs (finished_at, file, ok, verified)"
               " values ('2026-01-01T00:00:00Z', 'b.dump', true, false)")
    db.execute("set local role authenticator")
    gauges = db.execute("select internal.ops_metrics()").fetchone()[0]
    assert gauges["referral_backup_last_success_timestamp_seconds"] >= 1767225600
    assert gauges["referral_cron_failed_runs_total"]["cleanup-expired-offers"] == 0
    for role in ("anonymous", "app_user", "app_admin"):
        db.rollback()
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select internal.ops_metrics()")
