"""Limits with clear errors: body size (413), URL length (414), rows per read, per-role statement_timeout."""

from __future__ import annotations

import time

import httpx
import psycopg

from tests.security.conftest import auth


def test_large_body_is_413_before_it_is_read(secured):
    gw, tokens = secured
    big = b'{"title": "' + b"x" * 2_000_000 + b'"}'
    r = httpx.post(gw.url + "/offers", content=big, headers={**auth(tokens["admin"]), "Content-Type": "application/json"},
                   timeout=10)
    assert r.status_code == 413 and r.json()["code"] == "PGRSTX13"
    assert "limit" in r.json()["details"]


def test_chunked_large_body_is_413(secured):
    gw, tokens = secured

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = httpx.post(gw.url + "/rpc/login", content=chunks(), headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413 and r.json()["code"] == "PGRSTX13"


def test_long_url_is_414(secured):
    gw, _ = secured
    ids = ",".join(str(i) for i in range(3000))
    r = httpx.get(gw.url + f"/offers?id=in.({ids})", timeout=10)
    assert r.status_code == 414 and r.json()["code"] == "PGRSTX14"
    assert httpx.get(gw.url + "/offers?id=in.(1,2)", timeout=10).status_code in (200, 400)  # short is served


def test_reads_are_capped_at_max_rows(secured, security_db):
    gw, tokens = secured
    with psycopg.connect(security_db.app_url, autocommit=True) as conn:
        conn.execute("insert into api.offers (title, institution, offer_type, status) "
                     "select 'cap ' || g, 'Cap Bank', 'brokerage', 'active' from generate_series(1, 1100) g")
    try:
        r = httpx.get(gw.url + "/offers?institution=eq.Cap%20Bank&select=id", timeout=10,
                      headers={"Prefer": "count=exact"})
        assert r.status_code == 206 and len(r.json()) == 1000
        assert r.headers["content-range"] == "0-999/1100"
    finally:
        with psycopg.connect(security_db.app_url, autocommit=True) as conn:
            conn.execute("delete from api.offers where institution = 'Cap Bank'")


def test_anonymous_statement_timeout_is_applied_per_request(secured, security_db):
    """ALTER ROLE anonymous SET statement_timeout (migration 012) holds although the gateway only SETs ROLE."""
    gw, tokens = secured
    with psycopg.connect(security_db.app_url, autocommit=True) as conn:
        conn.execute("create or replace function api.slow_probe(seconds float8) returns int language sql as "
                     "$$ select 1 from pg_sleep(seconds) $$")
        conn.execute("grant execute on function api.slow_probe(float8) to anonymous, app_user")
        conn.execute("notify pgrst")
    try:
        deadline = time.monotonic() + 10
        while httpx.post(gw.url + "/rpc/slow_probe", json={"seconds": 0}, timeout=10).status_code == 404:
            assert time.monotonic() < deadline, "schema cache did not reload"
            time.sleep(0.1)
        t0 = time.monotonic()
        r = httpx.post(gw.url + "/rpc/slow_probe", json={"seconds": 10}, timeout=20)
        took = time.monotonic() - t0
        assert r.json()["code"] == "57014" and "statement timeout" in r.json()["message"], r.text
        assert r.status_code == 500  # PostgREST's mapping of 57xxx (operator intervention)
        assert 2.5 < took < 6, took
        # a user's limit is its own (5 s): a 4 s call completes
        assert httpx.post(gw.url + "/rpc/slow_probe", json={"seconds": 4}, headers=auth(tokens["user"]),
                          timeout=20).status_code == 200
        # and the setting does not leak to the next request on the same pooled connection
        with psycopg.connect(security_db.app_url) as conn:
            assert conn.execute("show statement_timeout").fetchone()[0] == "0"
    finally:
        with psycopg.connect(security_db.app_url, autocommit=True) as conn:
            conn.execute("drop function api.slow_probe(float8)")
            conn.execute("notify pgrst")
