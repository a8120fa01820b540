"""api.analytics_events partitioned by month (migration 031): partitions ahead, the default partition, retention
by whole partitions behind the rollups' watermarks, reads across partitions, and the migration itself (every
row moved, writes during it wait and land) on a cluster of its own migrated up to 030."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest

from referral_service import config, localdb
from referral_service.migrate import migrate
from referral_service.seed import seed
from tests.conftest import act_as
from tests.db.test_offers import add_offer

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def add_event(db, offer, at) -> str:
    return db.execute("insert into api.analytics_events (event_type, event_data, offer_id, created_at)"
                      " values ('offer_view', '{}', %s, %s) returning id", [offer, at]).fetchone()[0]


def partition_of(db, event_id) -> str:
    return db.execute("select tableoid::regclass::text from api.analytics_events where id = %s",
                      [event_id]).fetchone()[0]


def partitions(db) -> dict[str, tuple]:
    return {p: (s, e) for p, s, e in db.execute("select partition::text, starts, ends from internal.event_partitions()")}


def create_partitions(db, as_of, ahead="0") -> int:
    return db.execute("select internal.create_event_partitions(%s, %s::interval)", [as_of, ahead]).fetchone()[0]


@pytest.fixture
def offer(db):
    db.execute("delete from api.analytics_events")
    db.execute("update internal.rollup_state set last_rolled_up_to = null, counted_before = null")
    return add_offer(db, "Partitioned", "active")


# --- the shape ---------------------------------------------------------------------------------------------

def test_events_are_partitioned_by_month_with_partitions_ahead_and_a_default(db):
    assert db.execute("select pg_get_partkeydef('api.analytics_events'::regclass)").fetchone()[0] \
        == "RANGE (created_at)"
    found = partitions(db)
    assert found["internal.analytics_events_default"] == (None, None)
    this_month = dt.datetime.now(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for n in range(4):  # this month and three ahead (the migration ran this month)
        month = (this_month + dt.timedelta(days=32 * n)).replace(day=1)
        starts, ends = found[f"internal.analytics_events_y{month:%Y}m{month:%m}"]
        assert starts == month and ends == (month + dt.timedelta(days=32)).replace(day=1)
    assert db.execute("select pg_get_constraintdef(oid) from pg_constraint"
                      " where conrelid = 'api.analytics_events'::regclass and contype = 'p'").fetchone()[0] \
        == "PRIMARY KEY (id, created_at)"


def test_partitions_are_private_with_rls_and_no_grants(db):
    rows = db.execute("""
        select c.relnamespace::regnamespace::text, c.relrowsecurity,
               has_table_privilege('app_admin', c.oid, 'select'), has_table_privilege('anonymous', c.oid, 'select')
        from internal.event_partitions() p join pg_class c on c.oid = p.partition""").fetchall()
    assert rows and set(rows) == {("internal", True, False, False)}


def test_a_new_partition_gets_the_parents_indexes_named_after_them(db):
    assert create_partitions(db, utc(2031, 1, 15), "2 months") == 3
    assert create_partitions(db, utc(2031, 1, 15), "2 months") == 0
    indexes = {r[0] for r in db.execute("select indexrelid::regclass::text from pg_index"
                                        " where indrelid = 'internal.analytics_events_y2031m02'::regclass")}
    assert indexes == {"internal.analytics_events_y2031m02_pkey", "internal.idx_events_time_y2031m02",
                       "internal.idx_events_offer_time_y2031m02", "internal.idx_events_inserted_xid_y2031m02",
                       "internal.idx_events_visitor_time_y2031m02", "internal.idx_events_visitor_views_y2031m02"}
    # every one of them is attached to the parent's index (the planner uses them through the parent)
    assert db.execute("select count(*) from pg_inherits where inhrelid = any(%s::regclass[])",
                      [list(indexes)]).fetchone()[0] == len(indexes)


@pytest.mark.parametrize("as_of, ahead", [(None, "1 month"), (NOW, None), (NOW, "-1 day"), (NOW, "11 years")])
def test_partition_job_arguments_are_checked(db, as_of, ahead):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="between 0 and 10 years"):
        create_partitions(db, as_of, ahead)


def test_partition_job_is_registered_and_runs(db):
    command = db.execute("select command from cron.job where jobname = 'create-event-partitions'").fetchone()[0]
    assert command == "select internal.create_event_partitions(now(), interval '3 months')"
    db.execute(command)


# --- where rows go ------------------------------------------------------------------------------------------

def test_an_event_of_any_time_is_stored_and_a_month_without_partition_lands_in_the_default(db, offer):
    here = add_event(db, offer, dt.datetime.now(dt.UTC))
    month = dt.datetime.now(dt.UTC)
    assert partition_of(db, here) == f"internal.analytics_events_y{month:%Y}m{month:%m}"
    for at in (utc(1999, 1, 1), utc(2090, 5, 5)):
        assert partition_of(db, add_event(db, offer, at)) == "internal.analytics_events_default"


def test_the_job_moves_a_months_rows_out_of_the_default_keeping_id_and_xid(db, offer):
    stray = [add_event(db, offer, utc(2024, 2, d)) for d in (1, 14, 29)]
    other = add_event(db, offer, utc(2024, 3, 1))
    before = db.execute("select id, inserted_xid::text, created_at from api.analytics_events order by id").fetchall()
    assert create_partitions(db, NOW) == 3  # 2024-02 and 2024-03 from the default, 2026-06 for as_of
    assert {partition_of(db, e) for e in stray} == {"internal.analytics_events_y2024m02"}
    assert partition_of(db, other) == "internal.analytics_events_y2024m03"
    assert db.execute("select count(*) from internal.analytics_events_default").fetchone()[0] == 0
    after = db.execute("select id, inserted_xid::text, created_at from api.analytics_events order by id").fetchall()
    assert after == before


# --- reading across partitions ------------------------------------------------------------------------------

def test_rollups_view_counts_and_dashboard_read_across_partitions(db, offer):
    create_partitions(db, utc(2026, 3, 1), "3 months")
    times = [utc(2026, 3, 31, 23), utc(2026, 4, 1, 1), utc(2026, 5, 20), utc(2026, 6, 15, 11), utc(2020, 1, 1)]
    for at in times:
        add_event(db, offer, at)
    assert len({partition_of(db, e) for (e,) in db.execute("select id from api.analytics_events")}) == 5
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    assert db.execute("select sum(views) from internal.offer_view_daily").fetchone()[0] == 5
    assert db.execute("select sum(events) from internal.event_daily").fetchone()[0] == 5
    act_as(db, "app_admin")
    assert db.execute("select view_count from api.offer_view_counts where offer_id = %s",
                      [offer]).fetchone()[0] == 5
    assert db.execute("select api.dashboard()").fetchone()[0]["events_per_day"] is not None


def test_a_time_range_reads_only_its_partitions(db, offer):
    create_partitions(db, utc(2026, 3, 1), "3 months")
    plan = "\n".join(r[0] for r in db.execute(
        "explain select count(*) from api.analytics_events"
        " where created_at >= '2026-04-02 00:00+00' and created_at < '2026-04-03 00:00+00'"))
    assert "analytics_events_y2026m04" in plan
    assert "analytics_events_y2026m03" not in plan and "analytics_events_default" not in plan


def test_the_partitioned_table_over_http_reads_for_admins_and_shows_no_partition(app_gateway):
    admin = app_gateway.client(app_gateway.login(app_gateway.admin_email, app_gateway.admin_password))
    with admin, app_gateway.client() as anon:
        offer = admin.post("/offers", headers={"Prefer": "return=representation"},
                           json={"title": "Partitioned over HTTP", "institution": "Bank", "offer_type": "bank",
                                 "requirements": "Deposit", "status": "active"}).json()[0]["id"]
        try:
            event = anon.post("/rpc/log_event", json={"event_type": "offer_view", "event_data": {"offer_id": offer}})
            assert event.status_code == 200, event.text
            since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
            rows = admin.get("/analytics_events", params={"offer_id": f"eq.{offer}", "created_at": f"gte.{since}",
                                                          "select": "id,event_type"})
            assert rows.status_code == 200 and rows.json() == [{"id": event.json(), "event_type": "offer_view"}]
            refused = admin.post("/analytics_events", headers={"Prefer": "return=representation"},
                                 json={"event_type": "offer_view", "event_data": {}, "offer_id": offer})
            assert refused.status_code == 403 and refused.json()["code"] == "42501"
            assert anon.get("/analytics_events").status_code == 401
            doc = admin.get("/").json()
            assert "/analytics_events" in doc["paths"] and not any("analytics_events_" in p for p in doc["paths"])
            columns = doc["definitions"]["analytics_events"]["properties"]
            assert [c for c in columns if "<pk/>" in columns[c].get("description", "")] == ["id", "created_at"]
        finally:
            admin.delete(f"/offers?id=eq.{offer}")


# --- retention ----------------------------------------------------------------------------------------------

@pytest.fixture
def months(db, offer):
    """Events in 2025-05 (two), 2026-03, 2026-05 and 2026-06, each month with its partition."""
    create_partitions(db, utc(2025, 5, 1))
    create_partitions(db, utc(2026, 3, 1), "3 months")
    for at in (utc(2025, 5, 10), utc(2025, 5, 11), utc(2026, 3, 7), utc(2026, 5, 6), NOW - dt.timedelta(hours=1)):
        add_event(db, offer, at)
    return offer


def purge(db, as_of=NOW) -> int:
    return db.execute("select internal.purge_events(%s)", [as_of]).fetchone()[0]


def test_retention_off_drops_nothing(db, months):
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    assert purge(db) == 0
    assert "internal.analytics_events_y2025m05" in partitions(db)


def test_retention_drops_whole_partitions_that_end_before_the_cutoff(db, months):
    db.execute("select internal.set_event_retention(30)")
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    # cutoff 2026-05-16: 2025-05 (2 events) and 2026-03 end before it; 2026-05 straddles it and stays whole
    assert purge(db) == 3
    left = partitions(db)
    assert "internal.analytics_events_y2025m05" not in left and "internal.analytics_events_y2026m03" not in left
    assert {"internal.analytics_events_y2026m05", "internal.analytics_events_y2026m06"} <= set(left)
    assert db.execute("select count(*) from api.analytics_events").fetchone()[0] == 2
    assert purge(db) == 0  # nothing more to do


def test_retention_waits_for_the_rollups_time_watermark(db, months):
    db.execute("select internal.set_event_retention(30)")
    assert purge(db) == 0  # nothing rolled up yet
    db.execute("select internal.refresh_rollups(%s)", [utc(2025, 6, 10)])  # time watermark 2025-06-09
    assert purge(db) == 2 and "internal.analytics_events_y2026m03" in partitions(db)


def test_retention_keeps_a_partition_holding_an_event_the_rollups_have_not_counted(db, months):
    db.execute("select internal.set_event_retention(30)")
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    # a back-dated event arrives in an old partition after the refresh: above the insertion watermark.
    # Simulated in this one transaction: the other events get an older transaction id, the watermark
    # is put at this transaction's, which the late event carries.
    late = add_event(db, months, utc(2026, 3, 20))
    db.execute("update api.analytics_events set inserted_xid = '3' where id <> %s", [late])
    db.execute("update internal.rollup_state set counted_before = pg_current_xact_id()")
    assert purge(db) == 2  # 2025-05 goes; 2026-03 holds the uncounted event and stays
    assert partition_of(db, late) == "internal.analytics_events_y2026m03"
    db.execute("update internal.rollup_state set counted_before = (pg_current_xact_id()::text::bigint + 1)::text::xid8")
    assert purge(db) == 2 and "internal.analytics_events_y2026m03" not in partitions(db)


def test_retention_deletes_counted_old_rows_of_the_default_partition(db, months):
    old, new = add_event(db, months, utc(2019, 1, 1)), add_event(db, months, utc(2090, 1, 1))
    db.execute("select internal.set_event_retention(30)")
    db.execute("select internal.refresh_rollups(%s)", [NOW])
    assert purge(db) == 4
    remaining = {r[0] for r in db.execute("select id from internal.analytics_events_default")}
    assert old not in remaining and new in remaining


def test_the_one_off_job_drops_the_old_table_and_unschedules_itself(db):
    assert db.execute("select internal.drop_unpartitioned_events()").fetchone()[0] is True
    assert db.execute("select to_regclass('internal.analytics_events_unpartitioned')").fetchone()[0] is None
    assert db.execute("select count(*) from cron.job where jobname = 'drop-unpartitioned-events'").fetchone()[0] == 0
    assert db.execute("select internal.drop_unpartitioned_events()").fetchone()[0] is True  # again: nothing to do


# --- the migration ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def premigration(tmp_path_factory) -> str:
    """Superuser URL of a database on a cluster of its own, migrated up to (not including) 031."""
    folder = tmp_path_factory.mktemp("migrations-before-031")
    for path in config.MIGRATIONS_DIR.glob("*.sql"):
        if path.name < "031":
            (folder / path.name).symlink_to(path)
    cluster = localdb.Cluster(name=f"test-partitions-{os.getpid()}", port=localdb.free_port())
    cluster.destroy()
    cluster.start()
    try:
        url = cluster.url(config.DB_NAME)
        migrate(url, Path(folder), log=lambda _line: None)
        yield url
    finally:
        cluster.destroy()


ROWS = "select count(*), md5(string_agg(e::text, ',' order by e.id)) from api.analytics_events e"
# days before yesterday: the writers during the migration add to today's only
OLD_ROLLUPS = ("select (select md5(string_agg(v::text, ',' order by day, offer_id)) from internal.offer_view_daily v"
               "        where day < current_date - 1),"
               " (select md5(string_agg(d::text, ',' order by day, event_type)) from internal.event_daily d"
               "        where day < current_date - 1)")


def seed_months(conn) -> str:
    """20,000 events over 14 months (some with visitor and user), counted by a refresh; returns an offer id."""
    offer = conn.execute("insert into api.offers (title, institution, offer_type, requirements, status)"
                         " values ('Before 031', 'Bank', 'bank', 'Deposit', 'active') returning id").fetchone()[0]
    user = conn.execute("select internal.create_user('partitions@example.com', 'partition pass 1', 'user')").fetchone()[0]
    conn.execute("insert into api.analytics_events (event_type, event_data, offer_id, user_id, visitor, created_at)"
                 " select (array['offer_view', 'offer_click', 'referral_click'])[1 + g %% 3],"
                 "        jsonb_build_object('offer_id', %s::text), %s,"
                 "        case when g %% 7 = 0 then %s::uuid end, case when g %% 5 = 0 then int4send(g) end,"
                 "        now() - g * interval '30 minutes'"
                 " from generate_series(1, 20000) g", [offer, offer, user])
    conn.execute("select internal.refresh_rollups(now())")
    conn.execute("select internal.set_event_limits(null, null)")
    return offer


def test_the_migration_moves_every_row_and_writes_during_it_wait_and_land(premigration):
    with psycopg.connect(premigration, autocommit=True) as conn:
        offer = seed_months(conn)
        rows_before, rollups_before = conn.execute(ROWS).fetchone(), conn.execute(OLD_ROLLUPS).fetchone()
        oldest = conn.execute("select min(created_at) from api.analytics_events").fetchone()[0]

    written, starts, errors, stop = [], [], [], threading.Event()

    def writer(kind: str) -> None:
        # one connection each, used before, during and after the migration: log_event's cached plan too
        with psycopg.connect(premigration, autocommit=True) as c:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    if kind == "insert":
                        written.append(add_event(c, offer, dt.datetime.now(dt.UTC)))
                    else:
                        with c.transaction():
                            act_as(c, "app_admin")
                            written.append(c.execute("select api.log_event('offer_click', %s::jsonb)",
                                                     [json.dumps({"offer_id": str(offer)})]).fetchone()[0])
                    starts.append(started)
                except psycopg.Error as exc:
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("insert", "log_event")]
    for t in threads:
        t.start()
    time.sleep(0.3)
    during = len(written)
    began = time.monotonic()
    applied = migrate(premigration, log=lambda _line: None)
    ended = time.monotonic()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()

    assert "031_partitioned_events.sql" in applied
    assert errors == [] and during > 0 and len(written) > during
    assert any(began < t < ended for t in starts)  # some writes were sent while the migration held its lock
    with psycopg.connect(premigration, autocommit=True) as conn:
        assert conn.execute("select relkind from pg_class where oid = 'api.analytics_events'::regclass").fetchone() \
            == ("p",)
        # every row that was there, unchanged (inserted_xid included), and every write that was acknowledged
        assert conn.execute(ROWS.replace("from api.analytics_events e",
                                         "from api.analytics_events e where id <> all(%s)"),
                            [written]).fetchone() == rows_before
        assert conn.execute("select count(*) from api.analytics_events where id = any(%s)",
                            [written]).fetchone()[0] == len(written)
        # the months of the old rows have partitions of their own; the default holds nothing
        first = oldest.astimezone(dt.UTC)
        assert conn.execute("select count(*) from internal.event_partitions() where starts is not null"
                            " and starts <= %s and ends > %s", [first, first]).fetchone()[0] == 1
        assert conn.execute("select count(*) from internal.analytics_events_default").fetchone()[0] == 0
        # the old table is empty, out of the API schema, and goes with the one-off job
        assert conn.execute("select count(*) from internal.analytics_events_unpartitioned").fetchone()[0] == 0
        assert conn.execute("select internal.drop_unpartitioned_events()").fetchone()[0] is True
        # the rollups of the older days come out the same after a refresh: nothing counted twice
        conn.execute("select internal.refresh_rollups(now())")
        assert conn.execute(OLD_ROLLUPS).fetchone() == rollups_before


def test_seeding_creates_the_partitions_of_its_time_range(premigration):
    migrate(premigration, log=lambda _line: None)  # up to date, whichever test ran first
    with psycopg.connect(premigration, autocommit=True) as conn:  # no month has a partition now
        for (partition,) in conn.execute("select partition::text from internal.event_partitions()"
                                         " where starts is not null").fetchall():
            conn.execute(f"drop table {partition}")
    stats = seed(premigration, offers=50, events=5000)
    assert stats["events"] == 5000
    with psycopg.connect(premigration, autocommit=True) as conn:
        assert conn.execute("select count(*) from internal.analytics_events_default").fetchone()[0] == 0
        assert conn.execute("select count(*) from api.analytics_events where created_at > now() - interval '61 days'"
                            " and event_data ->> 'offer_id' is not null").fetchone()[0] >= 5000
