"""Computed fields and computed relationships (issue 13 item 4)."""

from __future__ import annotations

import json

import pytest


def body(r):
    return json.loads(r.text)


@pytest.mark.parametrize(("query", "expected"), [
    ("/users?select=id,full_name&order=id&limit=2", [{"id": 1, "full_name": "Angela Martin"},
                                                     {"id": 2, "full_name": "Michael Scott"}]),
    ("/users?select=first&full_name=like.*Scott", [{"first": "Michael"}]),
    ("/users?select=id&or=(full_name.eq.Dwight Schrute,id.eq.1)&order=id", [{"id": 1}, {"id": 3}]),
    ("/users?select=id&order=full_name.desc&limit=1", [{"id": 2}]),
    ("/invoices?select=id,total_cents&order=total_cents.desc&limit=2", [{"id": 5, "total_cents": 300000},
                                                                        {"id": 4, "total_cents": 100000}]),
    # inside embeds and on rows a function returned
    ("/tasks?select=id,users(full_name)&id=eq.5", [{"id": 5, "users": [{"full_name": "Michael Scott"}]}]),
    ("/projects?select=id,invoices(total_cents)&invoices.total_cents=gt.100000&id=eq.3",
     [{"id": 3, "invoices": [{"total_cents": 300000}]}]),
    # computed relationships: to-one (ROWS 1) and to-many, by function name
    ("/projects?select=name,owner(name)&id=lt.3", [{"name": "Windows 7", "owner": {"name": "Microsoft"}},
                                                   {"name": "Windows 10", "owner": {"name": "Microsoft"}}]),
    ("/clients?select=name,ps:all_projects(name)&id=eq.2", [{"name": "Apple", "ps": [{"name": "IOS"},
                                                                                     {"name": "OSX"}]}]),
    ("/clients?select=name,all_projects!inner(name)&all_projects.name=eq.OSX", [{"name": "Apple",
                                                                                  "all_projects": [{"name": "OSX"}]}]),
    ("/projects?select=id,...owner(client:name)&id=eq.3", [{"id": 3, "client": "Apple"}]),
    ("/projects?select=id,owner(name)&order=owner(name).desc.nullslast,id&limit=2",
     [{"id": 1, "owner": {"name": "Microsoft"}}, {"id": 2, "owner": {"name": "Microsoft"}}]),
    # the function named like the table replaces the FK relationship (here: the next project)
    ("/tasks?select=name,projects(name)&id=eq.1", [{"name": "Design w7", "projects": {"name": "Windows 10"}}]),
    # from rows of an RPC
    ("/rpc/client_projects?c=2&select=name,owner(name),invoices(total_cents)&order=id",
     [{"name": "IOS", "owner": {"name": "Apple"}, "invoices": [{"total_cents": 100000}, {"total_cents": 300000}]},
      {"name": "OSX", "owner": {"name": "Apple"}, "invoices": []}]),
])
def test_computed(http, query, expected):
    r = http.get(query)
    assert r.status_code == 200, r.text
    assert body(r) == expected


def test_computed_fields_are_not_in_star(http):
    assert list(http.get("/users?id=eq.1").json()[0]) == ["id", "first", "last"]


def test_computed_relationship_with_inner_and_exact_count(http):
    r = http.get("/clients?select=name,all_projects!inner(name)&all_projects.name=like.Windows*",
                 headers={"Prefer": "count=exact"})
    assert r.headers["content-range"] == "0-0/1"
    assert body(r) == [{"name": "Microsoft", "all_projects": [{"name": "Windows 7"}, {"name": "Windows 10"}]}]


def test_related_order_on_a_to_many_computed_relationship(http):
    r = http.get("/clients?select=id,all_projects(id)&order=all_projects(id)")
    assert body(r) == {"code": "PGRST118", "details": "'clients' and 'all_projects' do not form a many-to-one or "
                       "one-to-one relationship", "hint": None,
                       "message": "A related order on 'all_projects' is not possible"}


def test_unknown_computed_field_is_42703(http):
    r = http.get("/users?select=id,nope")
    assert body(r) == {"code": "42703", "details": None, "hint": None, "message": "column users.nope does not exist"}
