"""RPC parameter forms (issue 13 item 9): single unnamed json/jsonb/text/bytea parameter chosen by Content-Type,
VARIADIC, filters/order/select on sets of scalars, and `Prefer: params=single-object` (unknown in v13)."""

from __future__ import annotations

import pytest

J = {"Content-Type": "application/json"}


def test_single_unnamed_json_and_jsonb_take_the_whole_body(gw):
    r = gw.post("/rpc/unnamed_json", json={"a": 1, "b": [1, 2]})
    assert (r.status_code, r.json()) == (200, {"a": 1, "b": [1, 2]})
    r = gw.post("/rpc/unnamed_jsonb", json={"a": 1})
    assert r.json() == {"a": 1, "seen": True}
    r = gw.post("/rpc/unnamed_json", content=b"[{\"a\": 1}, {\"a\": 2}]", headers=J)
    assert r.json() == [{"a": 1}, {"a": 2}]
    r = gw.post("/rpc/unnamed_json", content=b"42", headers=J)
    assert r.json() == []  # a top-level scalar becomes [] as in PostgREST
    r = gw.post("/rpc/unnamed_json", content=b"[1, 2]", headers=J)
    assert (r.status_code, r.json()["message"]) == (400, "All object keys must match")
    r = gw.post("/rpc/unnamed_json", content=b"{nope", headers=J)
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (400, "PGRST102", "Empty or invalid json")


def test_text_and_bytea_bodies(gw):
    r = gw.post("/rpc/unnamed_text", content="héllo there", headers={"Content-Type": "text/plain; charset=utf-8"})
    assert (r.status_code, r.json()) == (200, "got: héllo there")
    r = gw.post("/rpc/unnamed_bytea", content=b"\x00\x01\xff\x00", headers={"Content-Type": "application/octet-stream"})
    assert (r.status_code, r.json()) == (200, 4)


def test_raw_body_refused_where_no_such_parameter(gw):
    r = gw.post("/rpc/unnamed_json", content=b"x", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()) == (404, {
        "code": "PGRST202", "hint": None,
        "details": "Searched for the function ptx.unnamed_json with a single unnamed text parameter, but no matches "
                   "were found in the schema cache.",
        "message": "Could not find the function ptx.unnamed_json in the schema cache"})
    r = gw.post("/rpc/count_items", content=b"\x01", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 404  # a function without parameters never swallows a raw body
    assert r.json()["details"].endswith("with a single unnamed bytea parameter, but no matches were found in the "
                                        "schema cache.")
    r = gw.post("/items", content=b"x", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()["message"]) == (400, "Content-Type not acceptable: text/plain")


def test_json_not_found_mentions_the_unnamed_form(gw):
    r = gw.post("/rpc/count_items", json={"nope": 1})
    assert (r.status_code, r.json()["details"], r.json()["message"]) == (
        404, "Searched for the function ptx.count_items with parameter nope or with a single unnamed json/jsonb "
             "parameter, but no matches were found in the schema cache.",
        "Could not find the function ptx.count_items(nope) in the schema cache")
    r = gw.post("/rpc/count_items", content=b"a=1&b=2", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["details"] == "Searched for the function ptx.count_items with parameters a, b, but no matches " \
                                  "were found in the schema cache."


def test_unnamed_int_is_invisible_and_json_jsonb_is_ambiguous(gw):
    r = gw.post("/rpc/unnamed_int", json={"x": 1})
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    r = gw.post("/rpc/both_json", json={"x": 1})
    assert (r.status_code, r.json()) == (300, {
        "code": "PGRST203", "details": None,
        "hint": "Try renaming the parameters or the function itself in the database so function overloading can be "
                "resolved",
        "message": "Could not choose the best candidate function between: ptx.both_json( => json), "
                   "ptx.both_json( => jsonb)"})


def test_get_never_uses_the_unnamed_form(gw):
    r = gw.get("/rpc/unnamed_json")
    assert r.status_code == 404


@pytest.mark.parametrize("call", [
    lambda c: c.get("/rpc/join_words?v=hi&v=there"),
    lambda c: c.post("/rpc/join_words", json={"v": ["hi", "there"]}),
    lambda c: c.post("/rpc/join_words", content=b"v=hi&v=there",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}),
])
def test_variadic(gw, call):
    r = call(gw)
    assert (r.status_code, r.json()) == (200, "hi there")


def test_variadic_single_value_and_repeated_plain_parameter(gw):
    assert gw.get("/rpc/join_words?v=alone").json() == "alone"
    assert gw.get("/rpc/greet_all?greeting=Hey&greeting=Hi&names=a&names=b").json() == "Hi, a and b"
    assert gw.get("/rpc/sayhello?name=ignored&name=world").json() == "Hello, world"


def test_set_of_scalars_filters_order_select(gw):
    r = gw.get("/rpc/ret_setof_integers?pgrst_scalar=gt.1&order=pgrst_scalar.desc", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.json(), r.headers["content-range"]) == (200, [3, 2], "0-1/2")
    r = gw.get("/rpc/ret_setof_integers?select=pgrst_scalar&limit=1&offset=1")
    assert r.json() == [2]
    r = gw.post("/rpc/ret_setof_integers?or=(pgrst_scalar.eq.1,pgrst_scalar.eq.3)", json={})
    assert r.json() == [1, 3]
    r = gw.get("/rpc/ret_setof_integers?other=eq.1")
    assert r.status_code == 400 and r.json()["code"] == "42703"


def test_params_single_object_is_unknown_in_v13(gw):
    r = gw.post("/rpc/unnamed_json", json={"a": 1}, headers={"Prefer": "params=single-object"})
    assert r.status_code == 200 and "preference-applied" not in r.headers
    r = gw.post("/rpc/unnamed_json", json={"a": 1}, headers={"Prefer": "params=single-object, handling=strict"})
    assert (r.status_code, r.json()) == (400, {
        "code": "PGRST122", "details": "Invalid preferences: params=single-object", "hint": None,
        "message": "Invalid preferences given with handling=strict"})


def test_missing_default_with_columns_and_identity(gw):
    r = gw.post("/ident?columns=code,label,tags", json=[{"label": "a"}, {"code": 5}],
                headers={"Prefer": "missing=default, return=representation, tx=rollback"})
    assert r.status_code == 201, r.text
    rows = r.json()
    assert [(row["label"], row["tags"]) for row in rows] == [("a", ["a", "b"]), ("x", ["a", "b"])]
    assert rows[1]["code"] == 5 and isinstance(rows[0]["code"], int)
    r = gw.post("/ident?columns=id,label&on_conflict=id", json=[{"label": "b"}],
                headers={"Prefer": "missing=default, resolution=merge-duplicates, return=representation, tx=rollback"})
    assert r.status_code == 201 and isinstance(r.json()[0]["id"], int)
