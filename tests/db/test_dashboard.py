"""Dashboard rollups (with explicit reference times, no clock) and the admin-only dashboard functions."""

import datetime as dt

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import act_as
from tests.db.test_offers import add_offer

UTC = dt.UTC
AS_OF = dt.datetime(2030, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clean(db):
    """No events, no offers, and rollups that have never run."""
    db.execute("delete from api.analytics_events")
    db.execute("delete from api.offers")
    db.execute("delete from internal.offer_view_daily")
    db.execute("delete from internal.event_daily")
    db.execute("update internal.rollup_state set last_rolled_up_to = null")
    return db


def event(db, offer_id, at, event_type="offer_view"):
    db.execute("insert into api.analytics_events (event_type, event_data, offer_id, created_at)"
               " values (%s, %s, %s, %s)", [event_type, Jsonb({"offer_id": str(offer_id)}), offer_id, at])


def refresh(db, as_of):
    return db.execute("select internal.refresh_rollups(%s)", [as_of]).fetchone()[0]


def views(db):
    return db.execute("select day, offer_id, views from internal.offer_view_daily order by 1, 2").fetchall()


def daily(db):
    return db.execute("select day, event_type, events from internal.event_daily order by 1, 2").fetchall()


def day(delta_days):
    return (AS_OF + dt.timedelta(days=delta_days)).date()


@pytest.fixture
def offer(clean):
    return add_offer(clean, "Rolled up", "active")


def test_first_refresh_rolls_up_all_history_before_as_of(clean, offer):
    db = clean
    for delta in (-40, -3, -3, -1, 0):
        event(db, offer, AS_OF + dt.timedelta(days=delta, hours=-1))
    event(db, offer, AS_OF - dt.timedelta(hours=2), "offer_click")
    event(db, offer, AS_OF + dt.timedelta(seconds=1))  # after the reference time: not yet
    assert refresh(db, AS_OF) == 4 + 5
    assert views(db) == [(day(-40), offer, 1), (day(-3), offer, 2), (day(-1), offer, 1), (day(0), offer, 1)]
    assert daily(db) == [(day(-40), "offer_view", 1), (day(-3), "offer_view", 2), (day(-1), "offer_view", 1),
                         (day(0), "offer_click", 1), (day(0), "offer_view", 1)]


def test_days_are_utc_days_whatever_the_session_zone(clean, offer):
    db = clean
    db.execute("set local timezone = 'Pacific/Auckland'")
    event(db, offer, dt.datetime(2030, 1, 9, 23, 30, tzinfo=UTC))
    refresh(db, AS_OF)
    assert views(db) == [(dt.date(2030, 1, 9), offer, 1)]


def test_refresh_is_idempotent(clean, offer):
    db = clean
    for hours in (1, 20, 30, 100):
        event(db, offer, AS_OF - dt.timedelta(hours=hours))
    refresh(db, AS_OF)
    first = views(db), daily(db)
    assert len(first[0]) == 3  # Jan 6, Jan 9 (two), Jan 10
    refresh(db, AS_OF)  # the second call recomputes its window to the same rows
    assert (views(db), daily(db)) == first


def test_later_refreshes_recompute_the_last_two_days_by_time(clean, offer):
    db = clean
    event(db, offer, AS_OF - dt.timedelta(days=1))
    refresh(db, AS_OF)
    event(db, offer, AS_OF + dt.timedelta(minutes=1))  # counted once the reference time passes it
    refresh(db, AS_OF)
    assert views(db) == [(day(-1), offer, 1)]
    refresh(db, AS_OF + dt.timedelta(minutes=5))
    assert views(db) == [(day(-1), offer, 1), (day(0), offer, 1)]


# --- the insertion watermark: committed transactions, as in production ----------------------------------

@pytest.fixture
def committed(app_db_url):
    """Autocommit connections on an offer of their own (removed afterwards, with its events and rollups)."""
    conns = [psycopg.connect(app_db_url, autocommit=True) for _ in range(2)]
    offer = add_offer(conns[0], "Watermark offer", "active")
    yield conns, offer
    conns[0].execute("delete from api.analytics_events where offer_id = %s", [offer])
    conns[0].execute("delete from internal.offer_view_daily where offer_id = %s", [offer])
    conns[0].execute("delete from api.offers where id = %s", [offer])
    for c in conns:
        c.close()


def offer_views(db, offer):
    return db.execute("select day, views from internal.offer_view_daily where offer_id = %s order by 1",
                      [offer]).fetchall()


def test_back_dated_events_are_counted_once(committed):
    (db, _), offer = committed
    now = db.execute("select now()").fetchone()[0]
    refresh(db, now)
    # inserted after the refresh, dated 5 and 40 days back: outside the time window, below no watermark yet
    event(db, offer, now - dt.timedelta(days=5))
    event(db, offer, now - dt.timedelta(days=40))
    event(db, offer, now - dt.timedelta(days=40))
    refresh(db, now + dt.timedelta(seconds=1))
    refresh(db, now + dt.timedelta(seconds=2))  # a second refresh adds nothing twice
    day_of = lambda delta: (now - dt.timedelta(days=delta)).astimezone(UTC).date()  # noqa: E731
    assert offer_views(db, offer) == [(day_of(40), 2), (day_of(5), 1)]


def test_an_insert_still_open_during_a_refresh_is_counted_after_it_commits(committed):
    (db, other), offer = committed
    now = db.execute("select now()").fetchone()[0]
    refresh(db, now)
    with other.transaction():  # a slow client: its event is written before the refresh, committed after
        event(other, offer, now - dt.timedelta(days=10))
        refresh(db, now + dt.timedelta(seconds=1))
        assert offer_views(db, offer) == []
    refresh(db, now + dt.timedelta(seconds=2))
    refresh(db, now + dt.timedelta(seconds=3))
    assert offer_views(db, offer) == [((now - dt.timedelta(days=10)).astimezone(UTC).date(), 1)]


def test_rebuild_recounts_a_range_from_raw_events(committed):
    (db, _), offer = committed
    now = db.execute("select now()").fetchone()[0]
    for days in (3, 20):
        event(db, offer, now - dt.timedelta(days=days))
    refresh(db, now)
    # damage the rollups, as the old time-based refresh did by missing back-dated events
    db.execute("delete from internal.offer_view_daily where offer_id = %s", [offer])
    since = (now - dt.timedelta(days=7)).astimezone(UTC).date()
    db.execute("select internal.rebuild_rollups(%s, %s)", [since, now])
    assert offer_views(db, offer) == [((now - dt.timedelta(days=3)).astimezone(UTC).date(), 1)]  # only the range
    db.execute("select internal.rebuild_rollups(null, %s)", [now])
    assert len(offer_views(db, offer)) == 2
    refresh(db, now + dt.timedelta(seconds=1))  # and a refresh afterwards counts nothing twice
    assert [v for _, v in offer_views(db, offer)] == [1, 1]


def test_refresh_catches_up_after_a_gap_in_the_schedule(clean, offer):
    db = clean
    refresh(db, AS_OF)
    event(db, offer, AS_OF + dt.timedelta(days=1))
    event(db, offer, AS_OF + dt.timedelta(days=2))
    refresh(db, AS_OF + dt.timedelta(days=4))
    assert views(db) == [(day(1), offer, 1), (day(2), offer, 1)]


def test_watermark_and_retention_keep_rolled_up_counts(clean, offer):
    db = clean
    watermark = "select internal.rollup_watermark()"
    assert db.execute("select internal.rollup_watermark() = '-infinity'").fetchone()[0]  # nothing rolled up
    event(db, offer, AS_OF - dt.timedelta(days=3))
    event(db, offer, AS_OF - dt.timedelta(hours=1))
    refresh(db, AS_OF)
    mark = db.execute(watermark).fetchone()[0]
    assert mark == dt.datetime(2030, 1, 9, tzinfo=UTC)
    # what a retention job may do: delete events older than the watermark; the counts stay
    db.execute("delete from api.analytics_events where created_at < internal.rollup_watermark()")
    refresh(db, AS_OF + dt.timedelta(minutes=5))
    assert views(db) == [(day(-3), offer, 1), (day(0), offer, 1)]


@pytest.mark.parametrize("name, schedule, command", [
    ("refresh-rollups", "*/5 * * * *", "select internal.refresh_rollups(now())"),
    ("sample-ops", "* * * * *", "select internal.sample_ops(now())"),
])
def test_dashboard_cron_jobs_are_registered_and_run(db, name, schedule, command):
    job = db.execute("select schedule, command, active from cron.job where jobname = %s", [name]).fetchone()
    assert job == (schedule, command, True)
    db.execute(job[1])


# --- access -------------------------------------------------------------------------------------------

CALLS = ["select api.dashboard()", "select api.dashboard_events_per_day(7)"]


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
@pytest.mark.parametrize("call", CALLS)
def test_non_admins_get_no_dashboard(db, role, call):
    act_as(db, role, sub="00000000-0000-0000-0000-000000000001")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute(call)


@pytest.mark.parametrize("call", CALLS)
def test_admin_role_without_admin_claim_is_refused(db, call):
    db.execute("select set_config('role', 'app_admin', true), "
               "set_config('request.jwt.claims', '{\"role\": \"app_user\"}', true)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="admins only"):
        db.execute(call)


@pytest.mark.parametrize("role", ["anonymous", "app_user", "app_admin"])
@pytest.mark.parametrize("call", [
    "select internal.refresh_rollups(now())", "select internal.rollup_watermark()",
    "select internal.rebuild_rollups(null, now())", "select internal.sample_ops(now())",
    "select * from internal.ops_samples", "select internal.status_checks(now())",
    "select * from internal.offer_view_daily", "select * from internal.event_daily",
    "select * from internal.rollup_state",
])
def test_rollup_internals_are_closed_to_api_roles(db, role, call):
    act_as(db, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute(call)


def test_events_per_day_range_is_checked(db):
    act_as(db, "app_admin")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="between 1 and 366"):
        db.execute("select api.dashboard_events_per_day(0)")


# --- the document -------------------------------------------------------------------------------------

@pytest.fixture
def panels(clean):
    """Offers and events relative to the transaction's now(), rolled up, then the dashboard as an admin."""
    db = clean
    today = db.execute("select current_date").fetchone()[0]
    ids = {
        "soon": add_offer(db, "Soon", "active", "credit_card",
                          {"expiry_date": (today + dt.timedelta(days=3)).isoformat()}),
        "later": add_offer(db, "Later", "active", "bank_account",
                           {"expiry_date": (today + dt.timedelta(days=30)).isoformat()}),
        "draft": add_offer(db, "Draft", "draft", "brokerage",
                           {"expiry_date": (today + dt.timedelta(days=2)).isoformat()}),
        "old": add_offer(db, "Old", "expired", "bank_account"),
    }
    now = db.execute("select now()").fetchone()[0]
    for offer, hours in [("soon", 1), ("soon", 2), ("later", 3), ("later", 24 * 3), ("later", 24 * 3 + 1),
                         ("old", 24 * 20), ("old", 24 * 20), ("old", 24 * 20), ("old", 24 * 40)]:
        event(db, ids[offer], now - dt.timedelta(hours=hours))
    event(db, ids["soon"], now - dt.timedelta(hours=1), "referral_click")
    db.execute("delete from internal.backup_runs")  # runs recorded by other tests (the CLI's backups)
    db.execute("insert into internal.backup_runs (finished_at, file, size_bytes, verified, ok)"
               " values (now() - interval '1 day', 'old.dump', 10, true, true),"
               " (now() - interval '1 hour', 'new.dump', 20, false, true)")
    refresh(db, now)
    act_as(db, "app_admin")
    return db.execute("select api.dashboard()").fetchone()[0]


def test_offer_panels(panels):
    doc = panels
    assert doc["offers"] == {"total": 4, "by_status": {"active": 2, "draft": 1, "expired": 1},
                             "by_type": {"bank": 2, "credit_card": 1, "brokerage": 1}}
    assert doc["expiring_soon"]["total"] == 1
    assert [(o["title"], o["days_left"]) for o in doc["expiring_soon"]["items"]] == [("Soon", 3)]


def test_expiring_list_is_capped_with_its_full_count(clean):
    db = clean
    today = db.execute("select current_date").fetchone()[0]
    for i in range(12):
        add_offer(db, f"Expiring {i:02}", "active", metadata={"expiry_date": (today + dt.timedelta(days=i % 7)).isoformat()})
    act_as(db, "app_admin")
    expiring = db.execute("select api.dashboard()").fetchone()[0]["expiring_soon"]
    assert expiring["total"] == 12 and len(expiring["items"]) == 8
    assert [o["days_left"] for o in expiring["items"]] == sorted(o["days_left"] for o in expiring["items"])


def test_most_viewed_windows(panels):
    doc = panels
    top = {window: [(o["title"], o["views"]) for o in rows] for window, rows in doc["most_viewed"].items()}
    assert top["24h"] == [("Soon", 2), ("Later", 1)]
    assert top["7d"] == [("Later", 3), ("Soon", 2)]
    assert top["30d"] == [("Later", 3), ("Old", 3), ("Soon", 2)]  # ties by title


def test_events_per_day_panel(panels):
    doc = panels
    days = doc["events_per_day"]
    assert len(days) == 30 and days == sorted(days, key=lambda d: d["day"])
    assert sum(d["total"] for d in days) == 9  # the 40-day-old view is outside the range
    assert sum(d["by_type"].get("referral_click", 0) for d in days) == 1


def test_health_jobs_and_backup_panels(panels):
    doc = panels
    database = doc["database"]
    assert database["name"] == "referral_service" and database["connections"] >= 1
    assert 0 <= database["cache_hit_ratio"] <= 1 and database["commits"] > 0
    assert all({"query", "calls", "mean_ms", "role"} <= set(q) for q in doc["slowest_statements"])
    assert {"cleanup-expired-offers", "refresh-rollups"} <= {j["name"] for j in doc["jobs"]}
    assert all("schedule" in j and "last_run" in j for j in doc["jobs"])
    assert doc["backup"]["latest"]["file"] == "new.dump" and doc["backup"]["latest"]["verified"] is False
    assert doc["backup"]["latest_verified"] is not None and doc["backup"]["latest_good"] is not None
    assert {"active", "idle", "idle_in_transaction", "waiting_locks", "longest_xact_s"} <= set(database["by_state"])
    assert set(doc["history"]) == {"hour", "day"} and "checks" in doc["status"]
    assert "referrals" in doc  # null until referral links are installed, their panel after
