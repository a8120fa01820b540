"""The per-shape plan cache (gateway/shapes.py) answers exactly as planning each request afresh.

Differential: the parity gateway (cache on, the default) against one on the same database with
PGRST_SERVER_SHAPE_CACHE=0, for reads that share a shape and differ in their values, asked in turns so that
later ones are served from the cache. Status, body and the headers a client reads must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from referral_service.gateway.plan import Plan
from referral_service.gateway.request import ApiRequest, Preferences
from referral_service.gateway.accept import Media
from referral_service.gateway.shapes import ShapeCache, plan_with_cache
from tests.parity.conftest import DB, SECRET
from tests.support import gateway_process, with_login

HEADERS = ("content-type", "content-range", "content-location", "preference-applied")

# (path, [value sets], request headers): each path's {0}, {1} are filled from each value set in turn
CASES = [
    ("/clients?id=eq.{0}", [("1",), ("2",), ("99",), ("x",), ("%00",), ("1%001",), ("1",)], {}),  # bad bytes too
    ("/clients?id=eq.{0}", [("1",), ("3",)], {"Accept": "application/vnd.pgrst.object+json"}),
    ("/clients?id=eq.{0}", [("1",), ("99",)], {"Accept": "application/vnd.pgrst.object+json"}),
    ("/projects?client_id=eq.{0}&id=gt.{1}&order=id.desc", [("1", "0"), ("2", "3"), ("1", "1")], {}),
    ("/projects?id=not.eq.{0}&select=id,name", [("1",), ("5",)], {"Prefer": "count=exact"}),
    ("/projects?id=lte.{0}", [("3",), ("1",)], {"Range": "0-1"}),
    ("/clients?select=name,projects(name,tasks(name))&projects.id=gte.{0}&id=lt.{1}",
     [("2", "3"), ("4", "2"), ("1", "9")], {}),
    ("/clients?select=id,projects!inner(id)&projects.name=eq.{0}", [("IOS",), ("Windows 7",), ("none",)], {}),
    ("/projects?name=like.{0}", [("*OS*",), ("Win*",)], {}),  # like: not left out, each value its own shape
    ("/projects?id=in.({0})", [("1,2",), ("3",), ("1,2,3,4",)], {}),
    ("/projects?client_id=is.{0}", [("null",), ("not_null",)], {}),
    ("/projects?or=(id.eq.{0},name.eq.{1})", [("1", "IOS"), ("2", "OSX")], {}),
    ("/invoices?meta->>n=eq.{0}&select=id,total", [("1",), ("4",)], {}),
    ("/invoices?meta->n=gt.{0}&select=id", [("1",), ("3",)], {}),
    ("/tasks?name=fts.{0}", [("design",), ("code",)], {}),
    ("/tasks?name=fts(english).{0}", [("design",), ("code",)], {}),
    ("/projects?id=eq.{0}", [("1",), ("2",)], {"Accept": "text/csv"}),
    ("/odd_names?quote\"d=eq.{0}", [("quoted",), ("other",)], {}),
    ("/clients?id=eq.{0}&limit=1&offset={1}", [("1", "0"), ("2", "1")], {}),
    ("/users?select=id,full_name&full_name=eq.{0}", [("Angela Martin",), ("nobody",)], {}),
]


@pytest.fixture(scope="session")
def uncached_url(parity_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "PGRST_DB_URI": with_login(parity_db, "parity_authenticator", "parity_authenticator", DB),
        "PGRST_DB_SCHEMAS": "parity", "PGRST_DB_ANON_ROLE": "parity_anon", "PGRST_JWT_SECRET": SECRET,
        "PGRST_DB_POOL": "2", "PGRST_DB_AGGREGATES_ENABLED": "true", "PGRST_SERVER_SHAPE_CACHE": "0",
    }
    folder = tmp_path_factory.mktemp("parity-uncached")
    with gateway_process(env, folder / "gateway.log", module="referral_service.gateway.server",
                         ready_path="/clients?limit=0") as gw:
        yield gw.url


def _seen(r: httpx.Response) -> tuple:
    return r.status_code, r.content, {h: r.headers.get(h) for h in HEADERS}


@pytest.mark.parametrize(("path", "values", "headers"), CASES, ids=[c[0] for c in CASES])
def test_cached_shapes_answer_as_fresh_plans(http, uncached_url, path, values, headers):
    with httpx.Client(base_url=uncached_url, timeout=10) as fresh:
        for method in ("GET", "HEAD"):
            for _ in range(2):  # the second round is all hits
                for vs in values:
                    url = path.format(*vs)
                    got, want = http.request(method, url, headers=headers), fresh.request(method, url, headers=headers)
                    assert _seen(got) == _seen(want), (method, url)


def test_many_values_one_shape_each_get_their_own_row(http):
    for i in (1, 2, 3, 1, 3, 2):
        r = http.get(f"/clients?id=eq.{i}", headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.json()["id"] == i


# --- the checks that keep a shape out of the cache (no database: the planning step is a stand-in) ----------

def _req(values: list[str]) -> ApiRequest:
    from referral_service.gateway.grammar import parse_filter_value

    req = ApiRequest("GET", "/t", "relation", "t", "api", Media("json"), Preferences())
    for v in values:
        f = parse_filter_value("a", f"eq.{v}")
        req.conditions.setdefault((), []).append(f)
        req.slots.append(f)
    req.query_shape = (("a", False, "eq"),) * len(values)
    return req


def _replanner(sql_of):
    def replan(req: ApiRequest) -> tuple[Plan, tuple[str, list[str | None]]]:
        values = [f.value for f in req.slots]
        return Plan(req, None, True), sql_of(values)  # type: ignore[arg-type]
    return replan


def test_a_value_that_shapes_the_sql_is_not_cached():
    cache = ShapeCache(8)
    replan = _replanner(lambda vs: (f"select {len(vs[0])}", [vs[0]]))  # the SQL text depends on the value
    plan_with_cache(cache, _req(["x"]), replan)
    assert len(cache) == 0


def test_a_refused_shape_is_planned_once_per_request_after_that():
    cache, calls = ShapeCache(8), []

    def replan(req):
        calls.append(req)
        return _replanner(lambda vs: (f"select {len(vs[0])}", [vs[0]]))(req)

    plan_with_cache(cache, _req(["x"]), replan)  # planned, then refused after the sentinel plan
    plan_with_cache(cache, _req(["yy"]), replan)
    assert (len(calls), len(cache)) == (3, 0)


def test_a_parameter_derived_from_a_value_is_not_cached():
    cache = ShapeCache(8)
    replan = _replanner(lambda vs: ("select $1", [vs[0].upper()]))
    plan_with_cache(cache, _req(["x"]), replan)
    assert len(cache) == 0


def test_values_go_to_their_parameters_and_constants_stay():
    cache = ShapeCache(8)
    replan = _replanner(lambda vs: ("select $1, $2, $3", [vs[1], "20", vs[0]]))
    plan_with_cache(cache, _req(["a", "b"]), replan)
    assert len(cache) == 1
    hit = plan_with_cache(cache, _req(["c", "d"]), _replanner(lambda vs: pytest.fail("planned again")))
    assert hit.statement == ("select $1, $2, $3", ["d", "20", "c"])


def test_the_cache_is_bounded():
    cache = ShapeCache(2)
    for n in range(1, 5):
        req = _req(["v"] * n)
        plan_with_cache(cache, req, _replanner(lambda vs: ("select " + ", ".join(f"${i}" for i in
                                                                                range(1, len(vs) + 1)), vs)))
    assert len(cache) == 2
