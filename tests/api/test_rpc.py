"""RPC: argument passing, overloading, result shapes, transaction modes."""

from __future__ import annotations

import pytest


def test_scalar_get_and_post(http):
    r = http.get("/rpc/add?a=1&b=2")
    assert (r.status_code, r.text, r.headers["content-range"]) == (200, "3", "0-0/*")
    assert "content-location" not in r.headers
    r = http.post("/rpc/add", json={"a": 2, "b": 5})
    assert (r.status_code, r.text) == (200, "7")


def test_default_arguments(http):
    assert http.get("/rpc/hello").json() == "hello world"
    assert http.post("/rpc/hello", json={"name": "you"}).json() == "hello you"
    assert http.post("/rpc/hello").json() == "hello world"


def test_void_is_204(as_user):
    r = as_user.post("/rpc/noop")
    assert (r.status_code, r.content) == (204, b"")
    assert "content-type" not in r.headers


def test_setof_scalar(http):
    assert http.get("/rpc/numbers?n=3").json() == [1, 2, 3]


def test_setof_rows_with_filters_select_order_count(http):
    r = http.get("/rpc/books_by?author=1&select=id,title&order=id.desc", headers={"Prefer": "count=exact"})
    assert r.json() == [{"id": 2, "title": "The Dispossessed"}, {"id": 1, "title": "The Left Hand of Darkness"}]
    assert r.headers["content-range"] == "0-1/2"
    r = http.post("/rpc/books_by?select=id&year=gt.1970", json={"author": 1})
    assert r.json() == [{"id": 2}]
    r = http.get("/rpc/books_by?author=2&select=id,authors!author_id(name)&limit=1")
    assert r.json() == [{"id": 3, "authors": {"name": "Stanislaw Lem"}}]


def test_single_row_and_table_results(http):
    assert http.get("/rpc/first_book?select=id,title").json() == {"id": 1, "title": "The Left Hand of Darkness"}
    assert http.get("/rpc/stats").json() == [{"total": 5, "maxyear": 1974}]


def test_singular_on_setof(http):
    r = http.get("/rpc/books_by?author=3&select=id", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert (r.status_code, r.json()) == (200, {"id": 4})
    r = http.get("/rpc/books_by?author=1", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert (r.status_code, r.json()["code"]) == (406, "PGRST116")


def test_overloads_by_argument_names(http):
    assert http.get("/rpc/over?a=1").json() == "a"
    assert http.get("/rpc/over?b=x").json() == "b"
    assert http.post("/rpc/over", json={"b": "x"}).json() == "b"


def test_get_is_read_only_and_post_writes(as_user, sql):
    r = as_user.get("/rpc/add_log?msg=x")
    assert r.status_code == 405
    assert r.json() == {"code": "25006", "details": None, "hint": None,
                        "message": "cannot execute INSERT in a read-only transaction"}
    r = as_user.post("/rpc/add_log", json={"msg": "rpc-write"})
    assert r.status_code == 200
    assert sql("select count(*) from test.logs where msg = 'rpc-write'") == [(1,)]
    sql("delete from test.logs where msg = 'rpc-write'")


@pytest.mark.parametrize(("path", "body"), [
    ("/rpc/nope", {"code": "PGRST202",
                   "details": "Searched for the function test.nope without parameters, but no matches were found "
                              "in the schema cache.",
                   "hint": "Perhaps you meant to call the function test.noop",
                   "message": "Could not find the function test.nope without parameters in the schema cache"}),
    ("/rpc/add?a=1&c=2&b=1", None),
])
def test_unknown_function(http, path, body):
    r = http.get(path)
    if body is None:
        assert r.status_code in (400, 404)
        return
    assert (r.status_code, r.json()) == (404, body)


def test_function_argument_mismatch(http):
    r = http.post("/rpc/add", json={"a": 1, "x": 2})
    assert r.status_code == 404
    assert r.json()["message"] == "Could not find the function test.add(a, x) in the schema cache"


def test_raise_maps_to_400(http):
    r = http.get("/rpc/fail")
    assert (r.status_code, r.json()) == (400, {"code": "P0001", "details": "it failed", "hint": "try again",
                                               "message": "nope"})


def test_response_gucs(http):
    r = http.get("/rpc/teapot")
    assert r.status_code == 418
    assert r.headers["x-brew"] == "tea"
    assert r.headers["cache-control"] == "no-cache"


def test_request_gucs(http, gateway):
    token = gateway.token(role="gw_user", sub="u1")
    r = http.get("/rpc/whoami", headers={"X-Test": "t1", "Cookie": "c=cv", "Authorization": f"Bearer {token}"})
    assert r.json() == {"role": "gw_user", "claims": {"role": "gw_user", "sub": "u1"}, "method": "GET",
                        "path": "/rpc/whoami", "ua": "t1", "cookie": "cv"}


def test_rpc_bad_method(http):
    r = http.put("/rpc/add", json={})
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (405, "PGRST101", "Cannot use the PUT method on RPC")


def test_bad_argument_type(http):
    r = http.post("/rpc/add", json={"a": "x", "b": 1})
    assert (r.status_code, r.json()["code"]) == (400, "22P02")


@pytest.mark.parametrize(("value", "sent"), [("a\nb", "a%0Ab"), ("a\r\nX-Forged: 1", "a%0D%0AX-Forged: 1"),
                                             ("\x7f\x01", "%7F%01"), ("tab\tok", "tab\tok")])
def test_header_values_from_sql_never_split_or_drop_the_response(http, value, sent):
    """response.headers with a control character: percent-encoded, one header, the response delivered."""
    r = http.get("/rpc/header_echo", params={"value": value})
    assert r.status_code == 200 and "x-forged" not in r.headers
    assert r.headers["x-echo"] == sent
