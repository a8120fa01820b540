"""Issue 17 at 1M offers / 10M events: the first page of the view counts (migration 032) and of a search
(migration 033) reads about the page, whatever the size. What is checked is the plan's SHAPE at a modest size
(the page cut inside an ordered index scan, no sort over every total or every match) on data each test makes
itself, not the planner's cost choice on the suite's mixed data."""

import pytest

from tests.conftest import act_as
from tests.support import explained, plan_nodes

# the gateway's shape for GET /offer_view_counts?limit=&offset=[&order=view_count.desc]
COUNTS = ("select count(t), coalesce(json_agg(t), '[]') from (select v.offer_id, v.title, v.view_count "
          "from api.offer_view_counts v {order} limit %s offset %s) t")
OFFERS = 3000


explain = explained
nodes = plan_nodes


@pytest.fixture
def viewed(db):
    """OFFERS offers with 1..OFFERS views each counted by the totals, 20 viewed since, and one draft."""
    db.execute("delete from api.analytics_events")
    db.execute("delete from api.offers")
    db.execute("delete from internal.offer_view_daily")
    db.execute("update internal.rollup_state set last_rolled_up_to = null, counted_before = null")
    db.execute("insert into api.offers (title, institution, offer_type, status) select 'Offer ' || g, 'Bank', "
               "'bank_account', case when g = 7 then 'draft' else 'active' end from generate_series(1, %s) g",
               [OFFERS])
    # the rollups' daily counts stand in for the events: offer n has n views, the draft the most
    db.execute("insert into internal.offer_view_daily (day, offer_id, views) select current_date - 1, id, "
               "case when title = 'Offer 7' then 5000 else (substr(title, 7))::int end from api.offers")
    db.execute("update internal.rollup_state set last_rolled_up_to = now() - interval '1 hour', "
               "counted_before = pg_current_xact_id()")
    db.execute("refresh materialized view internal.offer_view_totals")
    # stored in no useful order (CONCURRENTLY rewrites changed rows anywhere): reading every total through the
    # index then costs more than sorting them, so only a plan that knows it needs ~10 rows uses the index
    db.execute("cluster internal.offer_view_totals using idx_offer_view_totals_offer")
    db.execute("analyze internal.offer_view_totals")
    # 20 offers viewed since the totals, one of them pushed to the top (as if inserted after the refresh)
    db.execute("insert into api.analytics_events (event_type, event_data, offer_id, created_at) "
               "select 'offer_view', '{}', o.id, now() from api.offers o, generate_series(1, "
               "case when o.title = 'Offer 5' then 10000 else 3 end) "
               "where o.title in (select 'Offer ' || g from generate_series(1, 20) g)")
    return db


def expected(db, limit, offset):
    """The same counts straight from the daily rollups and the events (as an admin would see them)."""
    return [tuple(r) for r in db.execute(
        "select o.id, o.title, (coalesce(d.views, 0) + coalesce(e.views, 0))::bigint as n from api.offers o "
        "left join (select offer_id, sum(views) as views from internal.offer_view_daily group by 1) d "
        "on d.offer_id = o.id left join (select offer_id, count(*) as views from api.analytics_events "
        "where created_at > now() - interval '1 minute' group by 1) e on e.offer_id = o.id "
        "order by n desc, o.id limit %s offset %s", [limit, offset])]


@pytest.mark.parametrize(("order", "offset"), [("", 0), ("", 100), ("order by v.view_count desc", 0)])
def test_view_counts_page_reads_about_the_page(viewed, order, offset):
    db = viewed
    want = expected(db, 10, offset)
    act_as(db, "app_admin")
    sql = COUNTS.format(order=order)
    top = explain(db, sql, [10, offset])
    scans = [n for n in nodes(top) if n.get("Relation Name") == "offer_view_totals"
             and n.get("Index Name") == "idx_offer_view_totals_views"]
    assert scans, top
    # the totals are read in order and the page is cut there: about limit + offset rows, not 3,000
    assert max(n["Actual Rows"] for n in scans) <= 10 + offset + 20, top
    sorts = [n for n in nodes(top) if n["Node Type"] == "Sort"]
    assert all(n["Actual Rows"] <= 20 for n in sorts), top  # only the offers viewed since the refresh
    assert "Merge Append" in {n["Node Type"] for n in nodes(top)}, top
    count, body = db.execute(sql, [10, offset]).fetchone()
    assert count == 10
    got = [(r["offer_id"], r["title"], r["view_count"]) for r in body]
    assert [n for *_, n in got] == [n for *_, n in want]  # ties may come in either order
    assert {(str(i), t, n) for i, t, n in want if n != want[-1][2]} <= {(i, t, n) for i, t, n in got}


def test_view_counts_hide_what_rls_hides(viewed):
    """Through the per-row title lookup, api.offers' RLS still applies: a user may not read the counts at all,
    and a deleted offer disappears from them."""
    db = viewed
    db.execute("delete from api.offers where title = 'Offer 5'")
    db.execute("savepoint s")
    act_as(db, "app_admin")
    titles = [r[0] for r in db.execute("select title from api.offer_view_counts limit 3")]
    assert titles == ["Offer 7", "Offer 3000", "Offer 2999"]  # the draft (admins see it); Offer 5 is gone
    db.execute("rollback to savepoint s")
    act_as(db, "app_user", sub="x")
    with pytest.raises(Exception) as exc:  # noqa: PT011 - the SQLSTATE is checked
        db.execute("select * from api.offer_view_counts")
    assert exc.value.sqlstate == "42501"


SEARCH = ("with pgrst_source as (select pgrst_call.* from api.search_offers(search_term := %s) as pgrst_call) "
          "select count(*), coalesce(json_agg(t.id), '[]') from (select * from pgrst_source limit %s offset %s) t")


@pytest.fixture
def searchable(db):
    """600 matches of 'checking', three in ten of them a draft, expired or archived (hidden by RLS)."""
    db.execute("delete from api.analytics_events")
    db.execute("delete from api.offers")
    db.execute("insert into api.offers (title, institution, offer_type, status, requirements) "
               "select 'Checking bonus ' || g, 'Bank ' || g % 7, 'bank_account', "
               "(array['active', 'active', 'active', 'active', 'draft', 'active', 'expired', 'active', 'active', "
               "'archived'])[1 + g % 10], case when g % 3 = 0 then 'open a checking account' end "
               "from generate_series(1, 600) g")
    return db


@pytest.mark.parametrize("role", ["anonymous", "app_user"])
def test_search_of_active_offers_reads_the_page_from_the_active_index(searchable, role):
    db = searchable
    db.execute("savepoint s")
    act_as(db, "app_admin")
    # The shape, not the planner's cost choice: on 600 rows with the statistics other tests left behind, a scan
    # and a sort may cost less (seen in a full run). Priced out, a plan without a sort must still exist.
    db.execute("set local enable_seqscan = off")
    db.execute("set local enable_sort = off")
    admin_top = explain(db, SEARCH, ["checking", 20, 0])
    admin_scan = next((n for n in nodes(admin_top) if n.get("Index Name", "").startswith("idx_offers_search")), {})
    assert admin_scan.get("Index Name") == "idx_offers_search_rum_all", admin_top  # admins see drafts too
    db.execute("rollback to savepoint s")
    every = [r[0] for r in db.execute(
        "select id from api.offers where status = 'active' and search_vector @@ to_tsquery('english', 'checking') "
        "order by search_vector <=> to_tsquery('english', 'checking'), id")]
    act_as(db, role, sub="x")
    db.execute("set local enable_seqscan = off")
    db.execute("set local enable_sort = off")
    top = explain(db, SEARCH, ["checking", 20, 40])
    scan = next((n for n in nodes(top) if n.get("Index Name", "").startswith("idx_offers_search")), {})
    assert scan.get("Index Name") == "idx_offers_search_rum" and "Order By" in scan, top
    assert scan.get("Rows Removed by Filter", 0) == 0  # no hidden row read and dropped
    assert scan["Actual Rows"] <= 60 and not any(n["Node Type"] == "Sort" for n in nodes(top))
    count, ids = db.execute(SEARCH, ["checking", 1000, 0]).fetchone()
    assert count == len(every) == 420 and sorted(ids) == sorted(str(i) for i in every)
