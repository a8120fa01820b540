"""log_event, view counts, monitoring views."""

import psycopg
import pytest

from tests.conftest import act_as
from tests.db.test_offers import add_offer


@pytest.fixture
def offer(db):
    return add_offer(db, "Viewed offer", "active")


@pytest.fixture
def draft(db):
    return add_offer(db, "Hidden draft", "draft")


def log(db, event_type, offer_id):
    return db.execute("select api.log_event(%s, jsonb_build_object('offer_id', %s::text))",
                      [event_type, offer_id]).fetchone()[0]


def test_anonymous_logs_a_view_without_user(db, offer):
    act_as(db, "anonymous")
    event = log(db, "offer_view", offer)
    db.execute("reset role")
    assert db.execute("select user_id, offer_id from api.analytics_events where id = %s",
                      [event]).fetchone() == (None, offer)


def test_user_id_comes_from_jwt(db, offer):
    uid = db.execute("select internal.create_user('ev@example.com', 'pass word 123')").fetchone()[0]
    act_as(db, "app_user", sub=str(uid))
    event = log(db, "offer_click", offer)
    db.execute("reset role")
    assert db.execute("select user_id from api.analytics_events where id = %s", [event]).fetchone()[0] == uid


def test_cannot_log_for_another_user(db, offer):
    act_as(db, "app_user", sub="00000000-0000-0000-0000-000000000001")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        db.execute("select api.log_event('offer_view', '{}'::jsonb, '00000000-0000-0000-0000-000000000002'::uuid)")


def test_anonymous_may_only_log_views(db, offer):
    act_as(db, "anonymous")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        log(db, "offer_click", offer)


@pytest.mark.parametrize("event_type", ["page_view", "", "offer_view; drop"])
def test_unknown_event_type_refused(db, offer, event_type):
    act_as(db, "app_user")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown event type"):
        log(db, event_type, offer)


def test_events_need_a_visible_offer(db, draft):
    act_as(db, "anonymous")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="visible offer"):
        log(db, "offer_view", draft)
    db.rollback()
    act_as(db, "anonymous")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="offer id"):
        db.execute("select api.log_event('offer_view', '{\"offer_id\": \"nope\"}')")


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
def test_events_not_directly_writable_or_readable(db, offer, role):
    act_as(db, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("insert into api.analytics_events (event_type, event_data) values ('offer_view', '{}')")
    db.rollback()
    act_as(db, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("select * from api.analytics_events")


def test_view_counts_admin_only_and_count_drafts_for_admin(db, offer, draft):
    db.execute("delete from api.analytics_events")
    act_as(db, "anonymous")
    log(db, "offer_view", offer)
    log(db, "offer_view", offer)
    db.execute("reset role")
    act_as(db, "app_admin")
    log(db, "offer_view", draft)
    log(db, "offer_click", offer)
    db.execute("reset role")
    admin = db.execute("select internal.create_user('viewer@example.com', 'pass word 123', 'admin')").fetchone()[0]
    act_as(db, "app_admin", sub=str(admin))
    log(db, "offer_view", draft)  # another visitor
    rows = db.execute("select offer_id, title, view_count from api.offer_view_counts").fetchall()
    # one anonymous visitor's two views count once (tests/db/test_events_abuse.py)
    assert rows == [(draft, "Hidden draft", 2), (offer, "Viewed offer", 1)]
    for role in ("anonymous", "app_user"):
        db.execute("reset role")
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select * from api.offer_view_counts")
        db.rollback()


@pytest.mark.parametrize("view", ["query_stats", "db_stats"])
def test_monitoring_views_admin_only(db, view):
    act_as(db, "app_admin")
    assert db.execute(f"select count(*) from api.{view}").fetchone()[0] > 0
    for role in ("anonymous", "app_user"):
        db.rollback()
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(f"select * from api.{view}")
