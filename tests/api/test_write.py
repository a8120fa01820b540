"""Writing: POST/PATCH/DELETE/PUT, Prefer handling, upserts (on the `items` table, reset per test)."""

from __future__ import annotations

import pytest

JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def clean_items(sql):
    sql("truncate test.items restart identity")
    yield
    sql("truncate test.items restart identity")


def test_post_single_minimal(as_user, sql):
    r = as_user.post("/items", json={"name": "a"})
    assert r.status_code == 201
    assert r.content == b""
    assert "content-type" not in r.headers
    assert r.headers["content-range"] == "*/*"
    assert sql("select id, name, qty, note from test.items") == [(1, "a", 1, "none")]


def test_post_representation_with_select(as_user):
    r = as_user.post("/items?select=id,name", json={"name": "a"}, headers={"Prefer": "return=representation"})
    assert r.status_code == 201
    assert r.json() == [{"id": 1, "name": "a"}]
    assert r.headers["preference-applied"] == "return=representation"
    assert "location" not in r.headers


def test_post_bulk_one_statement_and_count(as_user, sql):
    r = as_user.post("/items", json=[{"name": "a", "qty": 2}, {"name": "b", "qty": 3}],
                     headers={"Prefer": "return=representation, count=exact"})
    assert r.status_code == 201
    assert r.headers["content-range"] == "*/2"
    assert r.headers["preference-applied"] == "return=representation, count=exact"
    assert [x["name"] for x in r.json()] == ["a", "b"]
    r = as_user.post("/items", json=[], headers={"Prefer": "return=representation"})
    assert (r.status_code, r.json()) == (201, [])


def test_post_headers_only_location(as_user):
    r = as_user.post("/items", json={"name": "a"}, headers={"Prefer": "return=headers-only"})
    assert r.status_code == 201
    assert r.headers["location"] == "/items?id=eq.1"
    assert r.content == b""


def test_post_columns_and_missing_default(as_user):
    r = as_user.post("/items?columns=name,qty", json=[{"name": "a", "extra": 1}, {"name": "b", "qty": 5}],
                     headers={"Prefer": "return=representation, missing=default"})
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "missing=default, return=representation"
    assert [(x["name"], x["qty"], x["note"]) for x in r.json()] == [("a", 1, "none"), ("b", 5, "none")]


def test_post_columns_missing_is_null(as_user):
    r = as_user.post("/items?columns=name,note", json={"name": "a"}, headers={"Prefer": "return=representation"})
    assert r.json()[0]["note"] is None


@pytest.mark.parametrize(("body", "headers", "status", "expected"), [
    (b"{bad", JSON, 400, {"code": "PGRST102", "details": None, "hint": None, "message": "Empty or invalid json"}),
    (b'[{"name":"a"},{"qty":1}]', JSON, 400,
     {"code": "PGRST102", "details": None, "hint": None, "message": "All object keys must match"}),
    (b'{"nam":1}', JSON, 400, {"code": "PGRST204", "details": None, "hint": None,
                               "message": "Could not find the 'nam' column of 'items' in the schema cache"}),
    (b'{"qty":"x"}', JSON, 400, {"code": "22P02", "details": None, "hint": None,
                                 "message": 'invalid input syntax for type integer: "x"'}),
    (b'{"qty":null}', JSON, 400, {"code": "23502", "details": "Failing row contains (1, null, null, none).",
                                  "hint": None,
                                  "message": 'null value in column "qty" of relation "items" violates not-null '
                                             "constraint"}),
    (b"x", {"Content-Type": "application/xml"}, 400,
     {"code": "PGRST102", "details": None, "hint": None, "message": "Content-Type not acceptable: application/xml"}),
])
def test_post_errors(as_user, body, headers, status, expected):
    r = as_user.post("/items", content=body, headers=headers)
    assert r.status_code == status
    assert r.json() == expected


def test_unique_violation_is_409(as_user):
    as_user.post("/items", json={"name": "a"})
    r = as_user.post("/items", json={"name": "a"})
    assert r.status_code == 409
    assert r.json()["code"] == "23505"


def test_form_urlencoded_body(as_user, sql):
    r = as_user.post("/items", content=b"name=form&qty=4",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201
    assert sql("select name, qty from test.items") == [("form", 4)]


def test_upsert_merge_and_ignore(as_user, sql):
    as_user.post("/items", json={"id": 1, "name": "a", "qty": 1})
    r = as_user.post("/items", json=[{"id": 1, "name": "a", "qty": 7}],
                     headers={"Prefer": "resolution=merge-duplicates, return=representation"})
    assert r.status_code == 200
    assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    assert r.json()[0]["qty"] == 7
    r = as_user.post("/items", json=[{"id": 1, "name": "a", "qty": 9}, {"id": 2, "name": "b", "qty": 1}],
                     headers={"Prefer": "resolution=ignore-duplicates, return=representation"})
    assert r.status_code == 201
    assert [x["id"] for x in r.json()] == [2]
    r = as_user.post("/items?on_conflict=name", json={"name": "b", "qty": 42},
                     headers={"Prefer": "resolution=merge-duplicates"})
    assert r.status_code == 200
    assert sql("select id, qty from test.items order by id") == [(1, 7), (2, 42)]


def test_patch(as_user, sql):
    as_user.post("/items", json=[{"name": "a"}, {"name": "b"}])
    r = as_user.patch("/items?name=eq.a", json={"qty": 10})
    assert (r.status_code, r.headers["content-range"], r.content) == (204, "0-0/*", b"")
    r = as_user.patch("/items?name=eq.b", json={"qty": 11}, headers={"Prefer": "return=representation"})
    assert r.status_code == 200
    assert r.json() == [{"id": 2, "name": "b", "qty": 11, "note": "none"}]
    r = as_user.patch("/items?name=eq.zzz", json={"qty": 1})
    assert (r.status_code, r.headers["content-range"]) == (204, "*/*")
    r = as_user.patch("/items?id=eq.1", json={})
    assert r.status_code == 204
    assert sql("select qty from test.items order by id") == [(10,), (11,)]


def test_delete(as_user, sql):
    as_user.post("/items", json=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    r = as_user.delete("/items?name=eq.a")
    assert (r.status_code, r.content) == (204, b"")
    r = as_user.delete("/items?name=eq.b", headers={"Prefer": "return=representation, count=exact"})
    assert r.status_code == 200
    assert r.headers["content-range"] == "0-0/1"
    assert r.json() == [{"id": 2, "name": "b", "qty": 1, "note": "none"}]
    assert sql("select name from test.items") == [("c",)]


def test_put(as_user, sql):
    r = as_user.put("/items?id=eq.5", json={"id": 5, "name": "p"}, headers={"Prefer": "return=representation"})
    assert (r.status_code, r.json()) == (201, [{"id": 5, "name": "p", "qty": 1, "note": "none"}])
    r = as_user.put("/items?id=eq.5", json={"id": 5, "name": "q"}, headers={"Prefer": "return=representation"})
    assert (r.status_code, r.json()[0]["name"]) == (200, "q")
    r = as_user.put("/items?id=eq.5", json={"id": 5, "name": "r"})
    assert r.status_code == 204
    r = as_user.put("/items?id=eq.5", json={"id": 6, "name": "r"})
    assert (r.status_code, r.json()["code"]) == (400, "PGRST115")
    r = as_user.put("/items?name=eq.r", json={"id": 6, "name": "r"})
    assert (r.status_code, r.json()["code"]) == (405, "PGRST105")
    r = as_user.put("/items?id=eq.5&limit=1", json={"id": 5, "name": "r"})
    assert (r.status_code, r.json()["code"]) == (400, "PGRST114")
    assert sql("select id, name from test.items") == [(5, "r")]


def test_singular_write_rolls_back(as_user, sql):
    as_user.post("/items", json=[{"name": "a"}, {"name": "b"}])
    r = as_user.patch("/items", json={"qty": 99}, headers={"Accept": "application/vnd.pgrst.object+json"})
    assert (r.status_code, r.json()["code"], r.json()["details"]) == (406, "PGRST116", "The result contains 2 rows")
    assert sql("select count(*) from test.items where qty = 99") == [(0,)]
    r = as_user.patch("/items?name=eq.a", json={"qty": 99}, headers={
        "Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"})
    assert (r.status_code, r.json()["qty"]) == (200, 99)


def test_max_affected(as_user, sql):
    as_user.post("/items", json=[{"name": "a"}, {"name": "b"}])
    r = as_user.delete("/items", headers={"Prefer": "handling=strict, max-affected=1"})
    assert r.status_code == 400
    assert r.json() == {"code": "PGRST124", "details": "The query affects 2 rows", "hint": None,
                        "message": "Query result exceeds max-affected preference constraint"}
    assert sql("select count(*) from test.items") == [(2,)]
    r = as_user.delete("/items?name=eq.a", headers={"Prefer": "handling=strict, max-affected=1"})
    assert r.status_code == 204
    assert r.headers["preference-applied"] == "handling=strict, max-affected=1"


def test_strict_unknown_preference(as_user):
    r = as_user.get("/items", headers={"Prefer": "handling=strict, foo=bar"})
    assert r.status_code == 400
    assert r.json() == {"code": "PGRST122", "details": "Invalid preferences: foo=bar", "hint": None,
                        "message": "Invalid preferences given with handling=strict"}
    assert as_user.get("/items", headers={"Prefer": "foo=bar"}).status_code == 200


def test_anonymous_cannot_write(http):
    r = http.post("/items", json={"name": "x"})
    assert r.status_code == 401
    assert r.json() == {"code": "42501", "details": None, "hint": None, "message": "permission denied for table items"}
    assert r.headers["www-authenticate"] == "Bearer"


def test_rls_policy(as_user, gateway):
    r = as_user.get("/secrets")
    assert r.json() == [{"id": 1, "owner": "alice", "value": "a-secret"}]
    r = as_user.post("/secrets", json={"id": 9, "owner": "bob"})
    assert r.status_code == 403
    assert r.json()["message"] == 'new row violates row-level security policy for table "secrets"'


def test_embed_in_representation(as_user, sql):
    r = as_user.post("/reviews?select=stars,books(title)", json={"book_id": 3, "stars": 2},
                     headers={"Prefer": "return=representation"})
    try:
        assert r.status_code == 201, r.text
        assert r.json() == [{"stars": 2, "books": {"title": "Solaris"}}]
    finally:
        sql("delete from test.reviews where stars = 2")


@pytest.mark.parametrize("query", ["limit=1", "limit=1&order=id", "offset=1", "limit=0&offset=0"])
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_limit_on_patch_and_delete_is_refused_not_ignored(as_user, sql, method, query):
    """PostgREST v13 ignores `limit` here; a client written for limited updates would change every row."""
    sql("insert into test.logs select 'limited', g from generate_series(1, 3) g")
    try:
        r = as_user.request(method, f"/logs?msg=eq.limited&{query}", json={"at": 0} if method == "PATCH" else None)
        assert r.status_code == 400
        assert r.json()["code"] == "PGRST114"
        assert r.json()["message"] == f"limit/offset querystring parameters are not allowed for {method}"
        assert "max-affected" in r.json()["hint"]
        assert sql("select count(*), sum(at) from test.logs where msg = 'limited'")[0] == (3, 6)
    finally:
        sql("delete from test.logs where msg = 'limited'")
