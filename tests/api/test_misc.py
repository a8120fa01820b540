"""OpenAPI, OPTIONS, CORS, unsupported verbs, pre-request, schema reload."""

from __future__ import annotations

import time

import httpx


def test_openapi(http):
    r = http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/openapi+json; charset=utf-8"
    doc = r.json()
    assert doc["swagger"] == "2.0"
    assert doc["info"]["title"] == "Gateway test API"
    assert "/authors" in doc["paths"] and "/book_titles" in doc["paths"] and "/rpc/add" in doc["paths"]
    assert doc["definitions"]["authors"]["description"] == "People who write books"
    assert doc["definitions"]["authors"]["properties"]["name"]["description"] == "Full name"
    assert doc["paths"]["/rpc/add"]["post"]["summary"] == "Adds two integers"
    assert http.get("/", headers={"Accept": "text/csv"}).status_code == 406


def test_options(http):
    r = http.options("/authors")
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["allow"] == "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
    assert r.headers["access-control-allow-origin"] == "*"
    assert http.options("/logs").headers["allow"] == "OPTIONS,GET,HEAD,POST,PATCH,DELETE"
    assert http.options("/rpc/add_log").headers["allow"] == "OPTIONS,POST"
    assert http.options("/rpc/add").headers["allow"] == "OPTIONS,GET,HEAD,POST"


def test_unsupported_verb(http):
    r = http.request("TRACE", "/authors")
    assert r.status_code == 405
    assert r.json() == {"code": "PGRST117", "details": None, "hint": None, "message": "Unsupported HTTP method: TRACE"}


def test_cors(http):
    r = http.get("/authors?limit=1", headers={"Origin": "http://example.com"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == (
        "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, "
        "Transfer-Encoding, Range-Unit")
    assert "access-control-allow-origin" not in http.get("/authors?limit=1").headers
    r = http.options("/authors", headers={"Origin": "http://example.com", "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "Content-Type, Prefer"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-methods"] == "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"
    assert r.headers["access-control-allow-headers"] == (
        "Authorization, Content-Type, Prefer, Accept, Accept-Language, Content-Language")
    assert r.headers["access-control-max-age"] == "86400"
    r = http.get("/nope", headers={"Origin": "http://example.com"})
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (404, "*")


def test_pre_request(http):
    assert http.get("/authors?limit=1").headers["x-pre"] == "1"
    r = http.get("/authors", headers={"X-Block": "yes"})
    assert r.status_code == 403
    assert r.json()["message"] == "blocked by pre-request"


def test_schema_reload_on_notify(http, sql):
    sql("create table test.late (id int primary key); grant select on test.late to gw_anon")
    try:
        assert http.get("/late").status_code == 404
        sql("notify pgrst")
        deadline = time.monotonic() + 5
        while http.get("/late").status_code != 200:
            assert time.monotonic() < deadline, "schema cache was not reloaded"
            time.sleep(0.05)
        assert http.get("/late").json() == []
    finally:
        sql("drop table test.late")
        sql("notify pgrst, 'reload schema'")


def test_a_cached_read_follows_a_schema_reload(http, sql):
    """The plans kept per request shape (gateway/shapes.py) go with the schema cache they were made from."""
    sql("create table test.growing (id int primary key); insert into test.growing values (1);"
        "grant select on test.growing to gw_anon; notify pgrst")
    try:
        deadline = time.monotonic() + 5
        while http.get("/growing?id=eq.1").status_code != 200:
            assert time.monotonic() < deadline, "schema cache was not reloaded"
            time.sleep(0.05)
        for i in (1, 2, 1):  # one shape, served from the cache
            assert http.get(f"/growing?id=eq.{i}").json() == ([{"id": 1}] if i == 1 else [])
        sql("alter table test.growing add column note text default 'new'; notify pgrst")
        deadline = time.monotonic() + 5
        while http.get("/growing?id=eq.1").json() != [{"id": 1, "note": "new"}]:
            assert time.monotonic() < deadline, "a cached shape kept the old columns"
            time.sleep(0.05)
    finally:
        sql("drop table test.growing")
        sql("notify pgrst, 'reload schema'")


def test_no_traceback_on_garbage(http):
    for path in ("/authors?select=%00", "/authors?%ff=eq.1", "/rpc/add?a=%ff", "/authors?order=" + "x," * 500):
        r = http.get(path)
        assert r.status_code < 500, (path, r.text)
        assert "Traceback" not in r.text
    r = http.post("/rpc/add", content=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_content_length_matches(gateway):
    r = httpx.get(gateway.url + "/nope")
    assert int(r.headers["content-length"]) == len(r.content)
