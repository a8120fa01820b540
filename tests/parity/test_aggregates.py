"""Aggregate functions (issue 13 item 1) and spread embeds (item 2), exact bodies as PostgREST v13 gives them."""

from __future__ import annotations

import json

import pytest


def body(r):
    return json.loads(r.text)


@pytest.mark.parametrize(("query", "expected"), [
    ("/invoices?select=total.sum(),total.max(),total.min(),count(),project_id&order=project_id",
     [{"sum": 300.00, "max": 200.00, "min": 100.00, "count": 2, "project_id": 1},
      {"sum": 50.00, "max": 50.00, "min": 50.00, "count": 1, "project_id": 2},
      {"sum": 4000.00, "max": 3000.00, "min": 1000.00, "count": 2, "project_id": 3}]),
    ("/invoices?select=count()", [{"count": 5}]),
    ("/invoices?select=n:count()::text", [{"n": "5"}]),
    ("/invoices?select=t:total.sum()::int,kind&order=kind", [{"t": 1150, "kind": "a"}, {"t": 3200, "kind": "b"}]),
    ("/invoices?select=kind,n:meta->>n::int.sum()&order=kind", [{"kind": "a", "n": 8}, {"kind": "b", "n": 2}]),
    ("/invoices?select=total.avg()&project_id=eq.1", [{"avg": 150.0}]),
    ("/invoices?select=k:kind,total.max()&kind=eq.b", [{"k": "b", "max": 3000.00}]),
    # inside an embed: per parent, exactly one element even without children
    ("/projects?select=name,invoices(total.sum(),count())&order=id&id=gte.3",
     [{"name": "IOS", "invoices": [{"sum": 4000.00, "count": 2}]},
      {"name": "OSX", "invoices": [{"sum": None, "count": 0}]},
      {"name": "Orphan", "invoices": [{"sum": None, "count": 0}]}]),
    # grouping by an embedded object
    ("/invoices?select=project_id,s:total.sum(),projects(name)&order=project_id",
     [{"project_id": 1, "s": 300.00, "projects": {"name": "Windows 7"}},
      {"project_id": 2, "s": 50.00, "projects": {"name": "Windows 10"}},
      {"project_id": 3, "s": 4000.00, "projects": {"name": "IOS"}}]),
    # legacy select=count (PostgreSQL's functional notation), also inside embeds
    ("/invoices?select=count", [{"count": 5}]),
    ("/projects?select=name,invoices(count)&id=lt.3",
     [{"name": "Windows 7", "invoices": [{"count": 2}]}, {"name": "Windows 10", "invoices": [{"count": 1}]}]),
    # on a set-returning function
    ("/rpc/client_projects?c=1&select=id.max()", [{"max": 2}]),
    # a to-one spread hoists its aggregate to the parent, grouped by the parent's other fields
    ("/processes?select=...process_costs(cost.sum()),...categories(name)&order=categories(name)",
     [{"sum": 330, "name": "Batch"}, {"sum": 200, "name": "Mass"}]),
    ("/processes?select=...process_costs(c:count()),...categories(name)&order=categories(name)",
     [{"c": 2, "name": "Batch"}, {"c": 1, "name": "Mass"}]),
])
def test_aggregates(http, query, expected):
    r = http.get(query)
    assert r.status_code == 200, r.text
    assert body(r) == expected


def test_aggregates_are_refused_when_disabled(plain):
    expected = '{"code":"PGRST123","details":null,"hint":null,"message":"Use of aggregate functions is not allowed"}'
    for query in ("/invoices?select=total.sum()", "/invoices?select=count()", "/projects?select=invoices(count())",
                  "/processes?select=...process_costs(cost.sum())",
                  "/factories?select=name,...processes(id.sum())"):  # PGRST123 comes before PGRST127
        r = plain.get(query)
        assert (r.status_code, r.text) == (400, expected), query
    assert plain.get("/invoices?select=count").json() == [{"count": 5}]  # not an aggregate to PostgREST


def test_aggregates_in_to_many_spreads_are_not_implemented(http):
    r = http.get("/factories?select=name,...processes(name,cost:id.sum())")
    assert r.status_code == 400
    assert body(r) == {"code": "PGRST127", "details": "Aggregates are not implemented for one-to-many or "
                       "many-to-many spreads.", "hint": None, "message": "Feature not implemented"}


@pytest.mark.parametrize(("query", "status"), [
    ("/invoices?select=count(*)", 400), ("/invoices?select=total.sum(x)", 400),
    ("/invoices?select=total::numeric(10,2).sum()", 400), ("/invoices?select=sum()", 400),
])
def test_aggregate_syntax_errors(http, query, status):
    r = http.get(query)
    assert r.status_code == status
    assert body(r)["code"] in ("PGRST100", "PGRST200")


@pytest.mark.parametrize(("query", "expected"), [
    ("/projects?select=id,...clients(client_name:name)&order=id&id=gte.4",
     [{"id": 4, "client_name": "Apple"}, {"id": 5, "client_name": None}]),
    ("/capitals?select=name,...countries(country:name,...country_stats(people))&id=eq.1",
     [{"name": "Paris", "country": "France", "people": 68000000}]),
    ("/countries?select=name,...capitals(capital:name)&id=eq.2", [{"name": "Peru", "capital": "Lima"}]),
    # v13 to-many spreads: one array per column, aligned; [] without rows
    ("/factories?select=factory:name,...processes(name,category_id)&processes.order=id&order=id",
     [{"factory": "Factory A", "name": ["Process A1", "Process A2"], "category_id": [1, 2]},
      {"factory": "Factory B", "name": ["Process B1", "Process B2"], "category_id": [1, 1]},
      {"factory": "Empty", "name": [], "category_id": []}]),
    ("/factories?select=id,...processes(p:name,...process_costs(cost))&processes.order=id.desc&id=eq.2",
     [{"id": 2, "p": ["Process B2", "Process B1"], "cost": [None, 180]}]),
    ("/factories?select=id,...processes(name,process_costs(cost))&processes.order=id&id=eq.2",
     [{"id": 2, "name": ["Process B1", "Process B2"], "process_costs": [{"cost": 180}, None]}]),
    ("/factories?select=id,...processes!inner(name)&processes.name=like.*1&order=id",
     [{"id": 1, "name": ["Process A1"]}, {"id": 2, "name": ["Process B1"]}]),
    ("/factories?select=id,...processes(name)&processes=is.null", [{"id": 3, "name": []}]),
    ("/factories?select=id,...processes()&id=eq.1", [{"id": 1}]),
    # spread over a junction
    ("/users?select=first,tasks:users_tasks(...tasks(name))&id=eq.2",
     [{"first": "Michael", "tasks": [{"name": "Design IOS"}, {"name": "Code IOS"}]}]),
    # order by a to-one spread's column
    ("/projects?select=id,...clients(cname:name)&order=clients(cname).desc.nullslast,id&limit=3",
     [{"id": 1, "cname": "Microsoft"}, {"id": 2, "cname": "Microsoft"}, {"id": 3, "cname": "Apple"}]),
])
def test_spreads(http, query, expected):
    r = http.get(query)
    assert r.status_code == 200, r.text
    assert body(r) == expected


def test_spread_duplicate_keys_are_kept(http):
    r = http.get("/factories?select=id,...processes(id)&processes.order=id&id=eq.2")
    assert json.loads(r.text, object_pairs_hook=lambda kv: kv) == [[("id", 2), ("id", [3, 4])]]


def test_spread_with_alias_is_a_parse_error(http):
    r = http.get("/projects?select=id,c:...clients(name)")
    assert r.status_code == 400
    assert body(r)["code"] == "PGRST100"
