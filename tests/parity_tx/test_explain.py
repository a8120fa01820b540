"""EXPLAIN through `Accept: application/vnd.pgrst.plan...` (issue 13 item 6), as PostgREST v13."""

from __future__ import annotations

import json
import uuid

PLAN_JSON = 'application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8'


def test_disabled_is_the_generic_406(default):
    r = default.get("/items", headers={"Accept": "application/vnd.pgrst.plan"})
    assert r.status_code == 406
    assert r.json() == {"code": "PGRST107", "details": None, "hint": None, "message":
                        'None of these media types are available: application/vnd.pgrst.plan+text; '
                        'for="application/json"'}


def test_text_plan(gw):
    r = gw.get("/items?id=eq.1", headers={"Accept": "application/vnd.pgrst.plan"})
    assert r.status_code == 200
    assert r.headers["content-type"] == 'application/vnd.pgrst.plan+text; for="application/json"; charset=utf-8'
    assert r.text.startswith("Aggregate") and r.text.endswith("\n")
    assert "Index Cond: (id = 1)" in r.text
    for absent in ("content-range", "content-location", "preference-applied"):
        assert absent not in r.headers


def test_json_plan_with_options_in_explains_order(gw):
    r = gw.get("/items?select=name", headers={
        "Accept": 'application/vnd.pgrst.plan+json; options=wal|analyze|bogus', "Prefer": "count=exact"})
    assert r.status_code == 200
    assert r.headers["content-type"] == \
        'application/vnd.pgrst.plan+json; for="application/json"; options=analyze|wal; charset=utf-8'
    doc = json.loads(r.text)
    assert r.text.endswith("]\n")
    assert doc[0]["Plan"]["Node Type"] == "Aggregate" and "Actual Rows" in doc[0]["Plan"]
    r = gw.get("/items", headers={"Accept": "application/vnd.pgrst.plan+json; options=settings"})
    assert json.loads(r.text)[0]["Settings"]["search_path"] == '"ptx", "public"'


def test_for_other_representation(gw):
    r = gw.get("/items?id=eq.1", headers={"Accept": 'application/vnd.pgrst.plan; for="application/vnd.pgrst.object"'})
    assert r.status_code == 200
    assert r.headers["content-type"] == \
        'application/vnd.pgrst.plan+text; for="application/vnd.pgrst.object+json"; charset=utf-8'
    r = gw.get("/items", headers={"Accept": 'application/vnd.pgrst.plan; for="text/xml"'})
    assert r.status_code == 406
    assert r.json()["message"] == \
        'None of these media types are available: application/vnd.pgrst.plan+text; for="text/xml"'


def test_write_plans_answer_200_and_analyze_runs_them(gw, sql):
    name = f"analyzed-{uuid.uuid4()}"
    r = gw.post("/items", json=[{"name": "explained-1"}, {"name": "explained-2"}], headers={
        "Accept": 'application/vnd.pgrst.plan+json; for="application/vnd.pgrst.object"',
        "Prefer": "return=representation"})
    assert r.status_code == 200  # no PGRST116 for two rows: result checks do not apply
    assert json.loads(r.text)[0]["Plan"]["Node Type"] == "Aggregate"
    assert not sql("select 1 from ptx.items where name like 'explained-%'")  # not analyzed: not run
    r = gw.post("/items", json={"name": name},
                headers={"Accept": "application/vnd.pgrst.plan+json; options=analyze", "Prefer": "tx=rollback"})
    assert r.status_code == 200 and "preference-applied" not in r.headers
    assert not sql("select 1 from ptx.items where name = %s", [name])  # ran, then rolled back
    r = gw.post("/items", json={"name": name},
                headers={"Accept": "application/vnd.pgrst.plan+json; options=analyze"})
    assert r.status_code == 200
    assert sql("select 1 from ptx.items where name = %s", [name]) == [(1,)]  # ran and committed


def test_rpc_plan(gw):
    r = gw.post("/rpc/add_item", json={"name": "x"}, headers={"Accept": "application/vnd.pgrst.plan"})
    assert r.status_code == 200
    assert r.text.startswith("Aggregate")
