"""Analytics cannot be flooded or inflated (issue 10, item 8): event_data size and shape, one view per offer
per visitor per window, a per-visitor event rate, visitors stored only as keyed hashes."""

import json
import time

import psycopg
import pytest

from tests.conftest import act_as
from tests.support import in_parallel
from tests.db.test_offers import add_offer

USER = "00000000-0000-0000-0000-00000000e001"
OTHER_USER = "00000000-0000-0000-0000-00000000e002"


@pytest.fixture
def offer(db):
    for uid, email in [(USER, "events-user@example.com"), (OTHER_USER, "events-other@example.com")]:
        db.execute("insert into internal.users (id, email, password) values (%s, %s, 'x')", [uid, email])
    return add_offer(db, "Abuse target", "active")


def as_visitor(db, role="anonymous", address=None, agent="Mozilla/5.0 test", **claims):
    """Act as the gateway does, plus the client address it resolves (request.client_address)."""
    act_as(db, role, **claims)
    db.execute("select set_config('request.headers', %s, true), set_config('request.client_address', %s, true)",
               [json.dumps({"user-agent": agent} if agent is not None else {}), address or ""])


def view(db, offer_id, **extra):
    return db.execute("select api.log_event('offer_view', %s::jsonb)",
                      [json.dumps({"offer_id": str(offer_id), **extra})]).fetchone()[0]


def stored_views(db, offer_id):
    db.execute("reset role")
    return db.execute("select count(*) from api.analytics_events where offer_id = %s and event_type = 'offer_view'",
                      [offer_id]).fetchone()[0]


def refused(db, sql, params=()):
    """Run `sql` expecting RAISE SQLSTATE 'PGRST'; returns (body, meta)."""
    db.execute("savepoint s")
    with pytest.raises(psycopg.Error) as caught:
        db.execute(sql, params)
    db.execute("rollback to savepoint s")
    assert caught.value.sqlstate == "PGRST", caught.value
    return json.loads(caught.value.diag.message_primary), json.loads(caught.value.diag.message_detail)


# --- size and shape --------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ({"pad": "x" * 2100}, "too large"),
    ({"pad": "é" * 1100}, "too large"),  # bytes, not characters
    ({"a": {"b": {"c": {"d": 1}}}}, "nested too deeply"),
    ({"a": [[[1]]]}, "nested too deeply"),
    ({f"k{i}": i for i in range(40)}, "too many values"),
    ({"list": list(range(40))}, "too many values"),
])
def test_oversized_or_deep_event_data_is_refused_with_what_to_change(db, offer, extra, message):
    as_visitor(db)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        view(db, offer, **extra)


def test_a_megabyte_is_refused_before_anything_is_stored(db, offer):
    as_visitor(db)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="at most 2048 bytes"):
        view(db, offer, pad="x" * (1 << 20))


@pytest.mark.parametrize("extra", [
    {},
    {"source": "search", "position": 3},
    {"ctx": {"page": {"section": "top"}}},  # 3 levels
    {"tags": ["a", "b", "c"], "pad": "x" * 1500},
])
def test_reasonable_event_data_is_accepted(db, offer, extra):
    as_visitor(db)
    assert view(db, offer, **extra) is not None


# --- one view per offer per visitor per window -------------------------------------------------------------

def test_repeated_anonymous_view_is_counted_once_and_answers_the_same_id(db, offer):
    as_visitor(db, address="203.0.113.7")
    first = view(db, offer)
    assert [view(db, offer) for _ in range(5)] == [first] * 5
    assert stored_views(db, offer) == 1


def test_event_data_variants_do_not_make_a_new_view(db, offer):
    as_visitor(db, address="203.0.113.7")
    first = view(db, offer)
    assert view(db, offer, nonce="1") == view(db, offer, nonce="2") == first
    assert stored_views(db, offer) == 1


@pytest.mark.parametrize("change", [
    {"address": "203.0.113.8"},
    {"agent": "Other agent/1.0"},
    {"address": "2001:db8::1"},
])
def test_another_address_or_agent_is_another_visitor(db, offer, change):
    base = {"address": "203.0.113.7", "agent": "Mozilla/5.0 test"}
    as_visitor(db, **base)
    view(db, offer)
    db.execute("reset role")
    as_visitor(db, **{**base, **change})
    view(db, offer)
    assert stored_views(db, offer) == 2


def test_signed_in_visitor_is_the_subject_whatever_the_address(db, offer):
    for address in ("203.0.113.1", "198.51.100.2", None):
        as_visitor(db, "app_user", address=address, agent=f"agent {address}", sub=USER)
        view(db, offer)
        db.execute("reset role")
    as_visitor(db, "app_user", sub=OTHER_USER)
    view(db, offer)
    assert stored_views(db, offer) == 2


def test_without_an_address_the_agent_alone_is_the_visitor(db, offer):
    as_visitor(db, address=None, agent="Agent A")
    view(db, offer)
    view(db, offer)
    db.execute("reset role")
    as_visitor(db, address=None, agent=None)
    view(db, offer)
    assert stored_views(db, offer) == 2


def test_a_view_after_the_window_counts_again(db, offer):
    as_visitor(db, address="203.0.113.7")
    first = view(db, offer)
    db.execute("reset role")
    db.execute("update api.analytics_events set created_at = created_at - interval '31 minutes' where id = %s",
               [first])
    as_visitor(db, address="203.0.113.7")
    assert view(db, offer) != first
    assert stored_views(db, offer) == 2


def test_clicks_are_not_deduplicated(db, offer):
    as_visitor(db, "app_user", sub=USER)
    for _ in range(3):
        db.execute("select api.log_event('offer_click', %s::jsonb)", [json.dumps({"offer_id": str(offer)})])
    db.execute("reset role")
    assert db.execute("select count(*) from api.analytics_events where offer_id = %s and event_type = 'offer_click'",
                      [offer]).fetchone()[0] == 3


def test_no_raw_address_or_agent_is_stored(db, offer):
    as_visitor(db, address="203.0.113.77", agent="Very Unique Agent 77")
    event = view(db, offer)
    db.execute("reset role")
    row = db.execute("select to_jsonb(e)::text, encode(visitor, 'hex'), octet_length(visitor)"
                     " from api.analytics_events e where id = %s", [event]).fetchone()
    assert "203.0.113.77" not in row[0] and "Unique Agent" not in row[0]
    assert row[2] == 32
    assert "203.0.113.77".encode().hex() not in row[1]


def test_the_visitor_key_is_a_secret_no_api_role_reads(db):
    for role in ("anonymous", "app_user", "app_admin"):
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select internal.secret('pseudonym_key')")
        db.rollback()
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select internal.pseudonym('x')")
        db.rollback()


def test_a_missing_key_is_made_again(db, offer):
    db.execute("delete from internal.secrets where name = 'pseudonym_key'")
    as_visitor(db)
    assert view(db, offer) is not None
    db.execute("reset role")
    assert len(db.execute("select value from internal.secrets where name = 'pseudonym_key'").fetchone()[0]) == 64


def test_concurrent_repeats_record_one_view(app_db_url):
    """Twenty parallel identical views, each its own committed transaction: one event."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        offer = add_offer(conn, f"Concurrent {time.time_ns()}", "active")

    def one() -> str:
        with psycopg.connect(app_db_url) as conn:
            as_visitor(conn, address="192.0.2.55", agent="burst")
            got = view(conn, offer)
            conn.commit()
        return got

    ids = in_parallel(one, 20)
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        stored = conn.execute("select count(*) from api.analytics_events where offer_id = %s", [offer]).fetchone()[0]
        conn.execute("delete from api.offers where id = %s", [offer])
    assert len(set(ids)) == 1 and stored == 1


# --- events per visitor per minute ------------------------------------------------------------------------

def test_a_visitor_records_at_most_60_events_a_minute(db, offer):
    as_visitor(db, "app_user", sub=USER)
    click = "select api.log_event('offer_click', %s::jsonb)"
    params = [json.dumps({"offer_id": str(offer)})]
    for _ in range(60):
        db.execute(click, params)
    body, meta = refused(db, click, params)
    assert body["code"] == "RS429" and "60 events per minute" in body["details"]
    assert meta["status"] == 429 and 1 <= int(meta["headers"]["Retry-After"]) <= 60
    # views too, and other visitors are not affected
    other = add_offer_as_owner(db)
    as_visitor(db, "app_user", sub=USER)
    refused(db, "select api.log_event('offer_view', %s::jsonb)", [json.dumps({"offer_id": str(other)})])
    db.execute("reset role")
    as_visitor(db, "app_user", sub=OTHER_USER)
    db.execute(click, params)


def test_many_distinct_offers_cannot_inflate_past_the_rate(db):
    offers = [add_offer(db, f"Spray {i}", "active") for i in range(65)]
    as_visitor(db, address="198.51.100.9")
    for o in offers[:60]:
        view(db, o)
    refused(db, "select api.log_event('offer_view', %s::jsonb)", [json.dumps({"offer_id": str(offers[60])})])
    # a minute later the visitor may record again
    db.execute("reset role")
    db.execute("update api.analytics_events set created_at = created_at - interval '61 seconds'"
               " where offer_id = any(%s)", [offers])
    as_visitor(db, address="198.51.100.9")
    assert view(db, offers[61]) is not None


def test_limits_are_settings(db, offer):
    db.execute("select internal.set_event_limits(null, null)")
    as_visitor(db)
    first = view(db, offer)
    assert view(db, offer) != first  # dedup off
    db.execute("reset role")
    db.execute("select internal.set_event_limits(1, 1800)")
    as_visitor(db, agent="fresh agent")
    view(db, offer)
    refused(db, "select api.log_event('offer_view', %s::jsonb)", [json.dumps({"offer_id": str(offer)})])


def test_the_dedup_and_rate_checks_use_the_visitor_indexes(db, offer):
    """With many events of one busy visitor, each check reads a few index entries, not the visitor's history."""
    other = add_offer(db, "Also viewed", "active")
    # a popular offer (20,000 visitors), a busy visitor (5,000 views of another offer), other traffic
    db.execute("insert into api.analytics_events (event_type, event_data, offer_id, visitor, created_at)"
               " select 'offer_view', '{}', %s, int4send(g), now() - g * interval '50 ms'"
               " from generate_series(1, 20000) g", [offer])
    db.execute("insert into api.analytics_events (event_type, event_data, offer_id, visitor, created_at)"
               " select 'offer_view', '{}', %s, '\\x00'::bytea, now() - g * interval '300 ms'"
               " from generate_series(1, 5000) g", [other])
    db.execute("insert into api.analytics_events (event_type, event_data, offer_id, visitor, created_at)"
               " select 'offer_view', '{}', %s, int4send(-g), now() - g * interval '10 ms'"
               " from generate_series(1, 80000) g", [add_offer(db, "Third", "active")])
    db.execute("analyze api.analytics_events")
    dedup = db.execute("explain select id from api.analytics_events where visitor = '\\x00'::bytea"
                       " and offer_id = %s and event_type = 'offer_view'"
                       " and created_at > now() - interval '30 minutes'",
                       [offer]).fetchall()
    rate = db.execute("explain select created_at from api.analytics_events where visitor = '\\x00'::bytea"
                      " and created_at > now() - interval '1 minute' order by created_at desc offset 59 limit 1")
    assert "idx_events_visitor_views" in " ".join(r[0] for r in dedup)
    assert "idx_events_visitor_time" in " ".join(r[0] for r in rate.fetchall())


def add_offer_as_owner(db):
    db.execute("reset role")
    return add_offer(db, "Second target", "active")
