"""Offers: RLS per role, constraints, expiry, search."""

import datetime as dt
import json

import psycopg
import pytest

from tests.conftest import act_as


def add_offer(db, title="Test offer", status="active", offer_type="bank_account", metadata=None,
              institution="Test Bank", requirements=None):
    return db.execute(
        "insert into api.offers (title, institution, offer_type, status, metadata, requirements)"
        " values (%s, %s, %s, %s, %s, %s) returning id",
        [title, institution, offer_type, status, json.dumps(metadata) if metadata is not None else None,
         requirements],
    ).fetchone()[0]


@pytest.fixture
def offers(db):
    db.execute("delete from api.analytics_events")
    db.execute("delete from api.offers")
    return {status: add_offer(db, f"{status} offer", status) for status in ("draft", "active", "expired")}


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
def test_public_sees_only_active(db, offers, role):
    act_as(db, role)
    assert db.execute("select id from api.offers").fetchall() == [(offers["active"],)]


def test_admin_sees_all(db, offers):
    act_as(db, "app_admin")
    assert db.execute("select count(*) from api.offers").fetchone()[0] == 3


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
@pytest.mark.parametrize("statement", [
    "insert into api.offers (title, institution, offer_type) values ('x', 'y', 'brokerage')",
    "update api.offers set title = 'hacked'",
    "delete from api.offers",
])
def test_nobody_but_admin_writes(db, offers, role, statement):
    act_as(db, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute(statement)


def test_admin_manages(db, offers):
    act_as(db, "app_admin")
    new = add_offer(db, "admin made", "draft", metadata={"expiry_date": "2030-01-31"})
    assert db.execute("update api.offers set status = 'active' where id = %s", [new]).rowcount == 1
    assert db.execute("delete from api.offers where id = %s", [offers["draft"]]).rowcount == 1


def test_updated_at_maintained_by_trigger(db, offers):
    before = db.execute("select updated_at from api.offers where id = %s", [offers["active"]]).fetchone()[0]
    db.commit()  # a new transaction, so now() moves on
    try:
        db.execute("update api.offers set title = 'renamed' where id = %s", [offers["active"]])
        after = db.execute("select updated_at from api.offers where id = %s", [offers["active"]]).fetchone()[0]
        assert after > before
    finally:
        db.execute("delete from api.offers where id = any(%s)", [list(offers.values())])
        db.commit()


@pytest.mark.parametrize("column, value", [("status", "published"), ("offer_type", "mortgage")])
def test_check_constraints(db, column, value):
    with pytest.raises(psycopg.errors.CheckViolation):
        add_offer(db, **{column: value})


@pytest.mark.parametrize("expiry", ["2024-13-01", "2024-02-30", "31/12/2024", "tomorrow", 20240101, "2024-1-1"])
def test_malformed_expiry_rejected_with_clear_error(db, expiry):
    with pytest.raises(psycopg.Error, match="expiry_date") as caught:
        add_offer(db, metadata={"expiry_date": expiry})
    assert caught.value.sqlstate in ("22007", "22008")


def test_expiry_compared_as_date(db, offers):
    assert db.execute("select expires_on from api.offers where id = %s",
                      [add_offer(db, metadata={"expiry_date": "2025-03-09"})]).fetchone()[0] == dt.date(2025, 3, 9)


def test_expire_offers_flips_exactly_past_active(db, offers):
    today = dt.date(2026, 6, 15)
    past = add_offer(db, "past", metadata={"expiry_date": "2026-06-14"})
    # as text, '2026-06-9' style values would sort wrongly; as dates 2026-06-09 < 2026-06-15
    past_early = add_offer(db, "past early", metadata={"expiry_date": "2026-06-09"})
    on_day = add_offer(db, "ends today", metadata={"expiry_date": "2026-06-15"})
    future = add_offer(db, "future", metadata={"expiry_date": "2027-01-01"})
    draft_past = add_offer(db, "draft past", status="draft", metadata={"expiry_date": "2020-01-01"})
    act_as(db, "app_admin")
    assert db.execute("select api.expire_offers(%s)", [today]).fetchone()[0] == 2
    statuses = dict(db.execute("select id, status from api.offers").fetchall())
    assert statuses[past] == statuses[past_early] == "expired"
    assert statuses[on_day] == statuses[future] == "active" and statuses[draft_past] == "draft"
    assert db.execute("select api.expire_offers(%s)", [today]).fetchone()[0] == 0


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
def test_expire_offers_is_admin_only(db, role):
    act_as(db, role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("select api.expire_offers()")


def test_search_ranks_title_over_requirements(db, offers):
    in_req = add_offer(db, "Plain account", requirements="bonus for direct deposit with Chase")
    in_title = add_offer(db, "Chase sapphire bonus", institution="Chase")
    act_as(db, "anonymous")
    found = [r[0] for r in db.execute("select id from api.search_offers('chase')")]
    assert found == [in_title, in_req]


def test_search_respects_rls(db, offers):
    add_offer(db, "Secret draft chase", status="draft")
    act_as(db, "anonymous")
    assert db.execute("select count(*) from api.search_offers('secret')").fetchone()[0] == 0
    db.execute("reset role")
    act_as(db, "app_admin")
    assert db.execute("select count(*) from api.search_offers('secret')").fetchone()[0] == 1


@pytest.mark.parametrize("term", ["a & | !", "'); drop table api.offers; --", ":*", "(((", "\"unclosed", ""])
def test_search_accepts_any_text(db, offers, term):
    act_as(db, "anonymous")
    db.execute("select * from api.search_offers(%s)", [term]).fetchall()


def test_search_websearch_syntax(db, offers):
    a = add_offer(db, "Chase checking bonus")
    add_offer(db, "Chase credit card")
    act_as(db, "anonymous")
    assert [r[0] for r in db.execute("select id from api.search_offers('chase -credit')")] == [a]
