"""Migration 028: the listing and the search first page are served by an index, whatever the data mix (issue 17).

Plans are read with sequential and bitmap scans off: at test sizes the planner may rightly prefer a scan, and
what is checked is that an index *can* serve the page in order, reading about the page and no more.
"""

import json

import pytest

from tests.conftest import act_as
from tests.support import explained, plan_nodes

GATEWAY_SHAPE = ("with pgrst_source as (select pgrst_call.* from api.search_offers(search_term := %s) as pgrst_call) "
                 "select count(*), coalesce(json_agg(t), '[]') from (select * from pgrst_source limit %s offset %s) t")


def add(db, title, status="active", institution="Test Bank", requirements=None, created_at="now()"):
    return db.execute(
        "insert into api.offers (title, institution, offer_type, status, requirements, created_at)"
        f" values (%s, %s, 'bank_account', %s, %s, {created_at}) returning id::text",
        [title, institution, status, requirements]).fetchone()[0]


def plan(db, sql, params=()):
    return explained(db, sql, params, off=("seqscan", "bitmapscan"))


nodes = plan_nodes


@pytest.fixture
def corpus(db):
    db.execute("delete from api.analytics_events")
    db.execute("delete from api.offers")
    active = [add(db, f"Active offer {i}", created_at=f"now() - interval '{i + 1000} minutes'") for i in range(40)]
    # an admin's import: 2,000 drafts newer than every active offer
    db.execute("insert into api.offers (title, institution, offer_type, status, created_at)"
               " select 'Draft ' || g, 'Bank', 'bank_account', 'draft', now() - g * interval '1 second'"
               " from generate_series(1, 2000) g")
    return active


def test_active_listing_reads_only_its_page_behind_recent_drafts(db, corpus):
    act_as(db, "anonymous")
    top = plan(db, "select id from api.offers where status = 'active' order by created_at desc limit 20")
    scan = next(n for n in nodes(top) if "Scan" in n["Node Type"])
    assert scan.get("Index Name") == "idx_offers_status_created"
    assert scan.get("Rows Removed by Filter", 0) == 0 and scan["Actual Rows"] == 20
    assert not any(n["Node Type"] == "Sort" for n in nodes(top))
    got = [r[0] for r in db.execute(
        "select id::text from api.offers where status = 'active' order by created_at desc limit 20")]
    assert got == corpus[:20]


def test_search_page_is_cut_inside_the_ranked_index_scan(db, corpus):
    for i in range(300):
        add(db, f"Chase checking bonus {i}", requirements="direct deposit")
    act_as(db, "anonymous")
    top = plan(db, GATEWAY_SHAPE, ["chase checking", 20, 40])
    scan = next(n for n in nodes(top) if "Scan" in n["Node Type"] and n["Node Type"] != "Subquery Scan")
    assert scan.get("Index Name") == "idx_offers_search_rum" and "Order By" in scan
    assert scan["Actual Rows"] <= 60  # offset + limit, not the 300 matches
    assert not any(n["Node Type"] == "Sort" for n in nodes(top))
    count, body = db.execute(GATEWAY_SHAPE, ["chase checking", 20, 40]).fetchone()
    assert count == 20 and len(body) == 20


def test_search_ranking_on_a_fixed_corpus(db, corpus):
    """Title over institution over requirements; every word over some words; phrases, negation, RLS."""
    both = add(db, "Chase Sapphire Preferred card", institution="Chase", requirements="spend 4000")
    title = add(db, "Sapphire card", institution="Chase", requirements="spend 4000")
    inst = add(db, "Premium rewards card", institution="Sapphire Bank", requirements="spend 4000")
    req = add(db, "Premium card", institution="Other Bank", requirements="spend 4000, sapphire members only")
    add(db, "Sapphire draft", status="draft")
    act_as(db, "anonymous")

    def search(term, limit=10):
        return [r[0] for r in db.execute(
            "select id::text from api.search_offers(%s) limit %s", [term, limit])]

    assert search("sapphire") == [both, title, inst, req]
    assert search("sapphire preferred")[0] == both
    assert search('"sapphire preferred"') == [both]
    assert search("sapphire -preferred") == [title, inst, req]
    assert search("sapphire", 2) == [both, title]
    assert db.execute("select count(*) from api.search_offers('draft')").fetchone()[0] == 0


BODY_SHAPE = ("select count(*) from json_to_recordset(json_build_array(%s::json)) as pgrst_body(search_term text), "
              "lateral api.search_offers(search_term := pgrst_body.search_term) c")


@pytest.mark.parametrize("empty", [False, True])
def test_search_bound_holds_inside_the_inlined_query(db, corpus, empty):
    """GET (a bound value) and POST (a column of the body's row), with offers to scan and with none."""
    if empty:
        db.execute("delete from api.offers")
    act_as(db, "app_user", sub="x")
    for sql, value in ((GATEWAY_SHAPE, ["x" * 1001, 20, 0]), (BODY_SHAPE, [json.dumps({"search_term": "x" * 1001})])):
        db.execute("savepoint s")
        with pytest.raises(Exception) as exc:  # noqa: PT011 - the SQLSTATE is checked
            db.execute(sql, value)
        db.execute("rollback to savepoint s")
        assert exc.value.sqlstate == "22001"
        assert exc.value.diag.message_detail == "1001 characters; at most 1000"
