"""Media types (issue 13 items 7 and 9): Accept ranking, handlers (domains named like media types), text/plain and
application/octet-stream from RPCs, GeoJSON, as PostgREST v13."""

from __future__ import annotations

import time

import psycopg
import pytest


def test_accept_ranking(gw):
    assert gw.get("/items?id=eq.1", headers={"Accept": "*/*, text/csv"}).headers["content-type"] == \
        "text/csv; charset=utf-8"  # a concrete type outranks */* at the same q
    r = gw.get("/items?id=eq.1", headers={"Accept": "text/csv;q=0.5, application/json"})
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    r = gw.get("/items?id=eq.1", headers={"Accept": "text/plain, application/json"})
    assert r.headers["content-type"] == "application/json; charset=utf-8"


def test_unavailable_types_are_listed(gw):
    r = gw.get("/items", headers={"Accept": "text/plain"})
    assert r.status_code == 406
    assert r.content == b'{"code":"PGRST107","details":null,"hint":null,' \
                        b'"message":"None of these media types are available: text/plain"}'
    r = gw.get("/rpc/ret_text", headers={"Accept": "text/plain"})
    assert r.status_code == 406  # a plain text result needs a "text/plain" domain


def test_rpc_text_plain_and_octet_stream(gw):
    r = gw.get("/rpc/plain_text", headers={"Accept": "text/plain"})
    assert (r.status_code, r.headers["content-type"], r.text) == (200, "text/plain; charset=utf-8", "plain words")
    r = gw.get("/rpc/raw_bytes", headers={"Accept": "application/octet-stream"})
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "application/octet-stream", b"\x00\xff\x10")
    r = gw.post("/rpc/echo_text", content="as is", headers={"Content-Type": "text/plain", "Accept": "text/plain"})
    assert r.text == "as is"
    r = gw.get("/rpc/null_text", headers={"Accept": "text/plain"})
    assert (r.status_code, r.content) == (200, b"")
    r = gw.get("/rpc/plain_text")  # */* is JSON, the builtin
    assert (r.headers["content-type"], r.json()) == ("application/json; charset=utf-8", "plain words")


def test_browser_accept_picks_the_function_type(gw):
    r = gw.get("/rpc/ret_image", headers={
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/png,*/*;q=0.8"})
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "image/png", b"\x89PNG")


def test_aggregate_handlers(gw):
    r = gw.get("/items?id=lt.3&order=id", headers={"Accept": "text/html"})
    assert (r.status_code, r.headers["content-type"], r.text) == (200, "text/html",
                                                                  "<ul><li>apple</li><li>pear</li></ul>")
    r = gw.get("/items?id=lt.3&select=id", headers={"Accept": "text/html"})
    assert r.status_code == 406  # a relation's own handler needs the default select
    r = gw.get("/items?id=lt.3&order=id&select=name", headers={"Accept": "application/vnd.ptx.names"})
    assert (r.headers["content-type"], r.text) == ("application/vnd.ptx.names", "apple,pear")  # anyelement: any select
    r = gw.head("/items?id=lt.3", headers={"Accept": "text/html"})
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "text/html", b"")


def test_vendor_types_are_not_overridden_and_any_handler(gw):
    r = gw.get("/blobs?order=id", headers={"Accept": "magic/number"})
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "application/octet-stream", b"\x01\x02\x03")
    r = gw.get("/blobs?order=id")
    assert r.content == b"\x01\x02\x03"  # */* handler answers even without Accept
    r = gw.get("/blobs?id=eq.1", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.json() == {"id": 1, "data": "\\x0102"}
    r = gw.get("/blobs?select=id&order=id")
    assert r.json() == [{"id": 1}, {"id": 2}]  # not the default select: builtin JSON


@pytest.fixture(scope="session")
def geo(ptx_db: str) -> None:
    with psycopg.connect(ptx_db, autocommit=True) as conn:
        try:
            conn.execute("create extension if not exists postgis")
        except psycopg.Error as exc:
            pytest.skip(f"PostGIS is not installed (Debian package postgresql-15-postgis-3): {exc}")
        conn.execute("""
            create table if not exists ptx.shops (id int primary key, name text, location geometry(point, 4326));
            grant select, insert on ptx.shops to ptx_anon;
            insert into ptx.shops values (1, 'north', 'SRID=4326;POINT(1 2)') on conflict do nothing;
            notify pgrst;""")


def test_geojson(gw, geo):
    for _ in range(100):  # the schema cache reloads on the NOTIFY
        r = gw.get("/shops?select=name,location", headers={"Accept": "application/geo+json"})
        if r.status_code == 200:
            break
        time.sleep(0.05)
    assert (r.status_code, r.headers["content-type"]) == (200, "application/geo+json; charset=utf-8")
    assert r.json() == {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"name": "north"}}]}
    r = gw.get("/shops?id=eq.0", headers={"Accept": "application/geo+json"})
    assert r.json() == {"type": "FeatureCollection", "features": []}
    r = gw.get("/shops?select=name", headers={"Accept": "application/geo+json"})
    assert (r.status_code, r.json()) == (400, {"code": "22023", "details": None, "hint": None,
                                               "message": "geometry column is missing"})
    r = gw.post("/shops", json={"id": 2, "name": "south", "location": "SRID=4326;POINT(3 4)"},
                headers={"Accept": "application/geo+json", "Prefer": "return=representation, tx=rollback"})
    assert r.status_code == 201 and r.json()["features"][0]["properties"] == {"id": 2, "name": "south"}
