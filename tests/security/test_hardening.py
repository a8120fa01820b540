"""One hostile client must not hurt anyone else (issue 10): each attack in several spellings, over HTTP, against
a real service process and its database."""

from __future__ import annotations

import concurrent.futures
import os
import stat
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import httpx
import psycopg
import pytest

from referral_service.gateway.ratelimit import RuntimeStateError, SharedLimiter
from tests.security.conftest import auth
from tests.support import gateway_process

OUTAGE = "database unreachable"  # what the gateway logs when it marks the database down


# --- client bytes are never a database outage ----------------------------------------------------------------

NUL_REQUESTS = [
    ("GET", "/offers?title=eq.%00", None),
    ("GET", "/offers?title=eq.ab%00cd&select=id", None),
    ("GET", "/offers?or=(title.eq.%00,institution.eq.x)", None),
    ("GET", "/offers?title=in.(a,%00)", None),
    ("GET", "/offers?metadata->>k=eq.%00", None),
    ("GET", "/rpc/search_offers?search_term=a%00b", None),
    ("POST", "/rpc/search_offers", b'{"search_term": "a\\u0000b"}'),
    ("POST", "/rpc/login", b'{"email": "x\\u0000@example.com", "password": "p\\u0000"}'),
    ("POST", "/rpc/log_event", b'{"event_type": "offer_view", "event_data": {"offer_id": "\\u0000"}}'),
    ("GET", "/offers%00", None),
    ("GET", "/rpc/search%00offers?search_term=a", None),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_REQUESTS, ids=[p for _, p, _ in NUL_REQUESTS])
def test_nul_is_the_clients_error_never_an_outage(secured, method, path, body):
    gw, _ = secured
    headers = {"Content-Type": "application/json"}
    r = httpx.request(method, gw.url + path, content=body, headers=headers, timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert set(r.json()) == {"code", "message", "details", "hint"}
    # the next client, at once, is served: the database was never marked down
    assert httpx.get(gw.url + "/offers?select=id&limit=1", timeout=10).status_code == 200
    assert OUTAGE not in gw.log.read_text()


def test_nul_in_a_header_that_reaches_a_setting(secured):
    gw, _ = secured
    # Prefer: timezone=... becomes set_config('timezone', ...); percent-encoding is not decoded there, so the
    # raw byte is what must be refused (httpx will not send it: write it ourselves)
    import socket

    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /offers?select=id HTTP/1.1\r\nHost: x\r\nPrefer: timezone=UTC\x00x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 4"), reply[:200]
    assert httpx.get(gw.url + "/offers?select=id&limit=1", timeout=10).status_code == 200
    assert OUTAGE not in gw.log.read_text()


# --- fair share: requests in flight per client, bounded anonymous input ------------------------------------------


@pytest.fixture(scope="module")
def chaos_service(security_db, tmp_path_factory):
    """The service in front of the chaos schema (a slow function), clients told apart by X-Forwarded-For."""
    env = {**security_db.chaos_env(PGRST_DB_POOL="6"), "REFERRAL_RATE_LIMIT": "0", "REFERRAL_AUTH_RATE_LIMIT": "0",
           "REFERRAL_TRUSTED_PROXIES": "127.0.0.1", "REFERRAL_OPS_METRICS": "false",
           "REFERRAL_SESSION_CHECK": ""}  # the chaos schema has no accounts
    with gateway_process(env, tmp_path_factory.mktemp("chaos-service") / "gateway.log", ready_path="/") as gw:
        yield gw


def test_one_client_cannot_hold_the_whole_pool(chaos_service):
    """Eight slow requests from one address (pool of 6, default cap 4 in flight): the cap refuses the excess
    at once, and another client is served without waiting for the slow ones."""
    hostile = {"X-Forwarded-For": "10.0.0.1"}
    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        slow = [pool.submit(httpx.post, chaos_service.url + "/rpc/nap", json={"seconds": 2}, headers=hostile,
                            timeout=20) for _ in range(8)]
        time.sleep(0.5)  # the slow ones hold their connections now
        started = time.monotonic()
        victim = httpx.post(chaos_service.url + "/rpc/nap", json={"seconds": 0},
                            headers={"X-Forwarded-For": "10.0.0.2"}, timeout=20)
        waited = time.monotonic() - started
        statuses = sorted(f.result().status_code for f in slow)
    assert victim.status_code == 200 and waited < 1.0, (victim.status_code, waited)
    assert statuses == [200] * 4 + [429] * 4
    refused = next(f.result() for f in slow if f.result().status_code == 429)
    assert refused.headers["retry-after"] == "1" and refused.json()["code"] == "RS429"


def test_anonymous_values_are_bounded_before_any_sql(secured):
    gw, tokens = secured
    huge = '"' + "checking bonus " * 60_000 + '"'  # ~900 KB: the search parser would run for seconds
    cases = [
        httpx.post(gw.url + "/rpc/search_offers", json={"search_term": huge[:60_000]}, timeout=10),
        httpx.get(gw.url + "/rpc/search_offers", params={"search_term": "x" * 1001}, timeout=10),
        httpx.get(gw.url + "/offers", params={"title": "eq." + "x" * 1001}, timeout=10),
        httpx.get(gw.url + "/offers", params={"or": "(title.eq." + "x" * 1001 + ")"}, timeout=10),
    ]
    for r in cases:
        assert r.status_code == 400 and r.json()["code"] == "22001", r.text[:300]
    started = time.monotonic()
    r = httpx.post(gw.url + "/rpc/search_offers", json={"search_term": huge}, timeout=20)
    assert r.status_code == 413 and time.monotonic() - started < 2
    # what a real visitor sends still works, and signed-in users are not bound by the anonymous caps
    assert httpx.get(gw.url + "/rpc/search_offers", params={"search_term": "checking bonus"}, timeout=10).status_code == 200
    r = httpx.post(gw.url + "/rpc/search_offers", json={"search_term": "checking " * 100}, headers=auth(tokens["user"]),
                   timeout=10)
    assert r.status_code == 200
    # the search itself bounds its input for everyone (the tsquery parser ignores statement_timeout)
    started = time.monotonic()
    r = httpx.post(gw.url + "/rpc/search_offers", json={"search_term": huge}, headers=auth(tokens["user"]), timeout=20)
    assert r.status_code == 400 and r.json()["code"] == "22001" and time.monotonic() - started < 2, r.text[:300]


# --- brute-force limits hold for every spelling of a route -------------------------------------------------------


@pytest.fixture(scope="module")
def strict_service(security_db, tmp_path_factory):
    env = security_db.app_env(REFERRAL_AUTH_RATE_LIMIT="3/600", REFERRAL_TRUSTED_PROXIES="127.0.0.1")
    with gateway_process(env, tmp_path_factory.mktemp("strict-service") / "gateway.log", ready_path="/") as gw:
        yield gw


LOGIN_SPELLINGS = [
    ("/rpc/login", {}),
    ("/rpc/login/", {}),
    ("/rpc/%6Cogin", {}),
    ("/rpc/l%6fgin/", {}),
    ("/rpc/login?select=*", {}),
    ("/rpc/login", {"Content-Profile": "api"}),
]


@pytest.mark.parametrize(("path", "extra"), LOGIN_SPELLINGS, ids=[p + str(e) for p, e in LOGIN_SPELLINGS])
def test_login_limit_holds_for_every_spelling(strict_service, path, extra):
    address = {"X-Forwarded-For": f"10.1.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    attempt = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "wrong password 1"}
    statuses = []
    for spelling, headers in [("/rpc/login", {})] * 2 + [(path, extra)] * 2:
        r = httpx.post(strict_service.url + spelling, json=attempt, headers={**address, **headers}, timeout=10)
        statuses.append(r.status_code)
    assert statuses[:3] == [403, 403, 403] and statuses[3] == 429, statuses


def test_tokens_do_not_multiply_attempts_and_signup_is_limited_per_address(strict_service, security_db):
    address = {"X-Forwarded-For": "10.2.0.1"}
    email, password = f"tok-{uuid.uuid4().hex[:8]}@example.com", "a long pass 123"
    with psycopg.connect(security_db.app_url, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, %s, 'user')", [email, password])
    token = httpx.post(strict_service.url + "/rpc/login", json={"email": email, "password": password},
                       headers={"X-Forwarded-For": "10.2.0.99"}, timeout=10).json()["access_token"]
    statuses = []
    for i in range(4):
        headers = {**address, **(auth(token) if i % 2 else {})}  # alternate with and without a token
        r = httpx.post(strict_service.url + "/rpc/signup",
                       json={"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": "a long pass 123"},
                       headers=headers, timeout=10)
        statuses.append(r.status_code)
    assert all(s < 300 for s in statuses[:3]) and statuses[3] == 429, statuses


# --- counts, limited writes -------------------------------------------------------------------------------------


def test_estimated_counts_do_not_reveal_hidden_rows(secured, security_db):
    gw, _ = secured
    marker = f"hidden-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(security_db.app_url, autocommit=True) as conn:
        conn.execute("insert into api.offers (title, institution, offer_type, status) "
                     "select %s, 'Bank', 'brokerage', 'draft' from generate_series(1, 500)", [marker])
        conn.execute("analyze api.offers")
    for prefer in ("count=planned", "count=estimated", "count=exact"):
        r = httpx.get(gw.url + "/offers", params={"select": "id", "title": f"eq.{marker}"},
                      headers={"Prefer": prefer}, timeout=10)
        assert r.status_code == 200 and r.json() == []
        assert r.headers["content-range"] == "*/0", (prefer, r.headers["content-range"])


@pytest.mark.parametrize("query", ["limit=1&order=title", "limit=1", "offset=0", "limit=0", "offset=5&limit=1"])
@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_limit_on_patch_and_delete_is_refused(secured, security_db, method, query):
    gw, tokens = secured
    marker = f"limited-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(security_db.app_url, autocommit=True) as conn:
        conn.execute("insert into api.offers (title, institution, offer_type) "
                     "select %s, 'Bank', 'brokerage' from generate_series(1, 3)", [marker])
    r = httpx.request(method, gw.url + f"/offers?title=eq.{marker}&{query}", headers=auth(tokens["admin"]),
                      json={"requirements": "changed"} if method == "PATCH" else None, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "PGRST114", r.text
    assert "max-affected" in r.json()["hint"]
    with psycopg.connect(security_db.app_url, autocommit=True) as conn:
        rows = conn.execute("select count(*), count(requirements) from api.offers where title = %s", [marker]).fetchone()
    assert rows == (3, 0)


# --- runtime state files, redirects ------------------------------------------------------------------------------


def test_rate_limit_table_is_private_and_never_follows_a_link(tmp_path, security_db):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**security_db.app_env(REFERRAL_RATE_LIMIT="100/60"), "XDG_RUNTIME_DIR": str(runtime)}
    with gateway_process(env, tmp_path / "gw.log", ready_path="/") as gw:
        table = runtime / "referral-service" / f"ratelimit-{gw.url.rsplit(':', 1)[1]}"
        assert stat.S_IMODE(table.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(table.stat().st_mode) == 0o600
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(RuntimeStateError):
        SharedLimiter(link)
    assert victim.read_text() == "precious"
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    (open_folder / "referral-service").mkdir(mode=0o777)
    os.chmod(open_folder / "referral-service", 0o777)
    env["XDG_RUNTIME_DIR"] = str(open_folder)
    with pytest.raises(RuntimeError, match="not a private folder"):
        with gateway_process(env, tmp_path / "gw2.log", ready_path="/"):
            pass
    assert "Traceback" not in (tmp_path / "gw2.log").read_text()  # one line for the operator


REDIRECT_ATTEMPTS = ["/dashboard/%5C%5Cevil", "/dashboard/%5C%5C2130706433", "/dashboard/%5C%2Fevil",
                     "/dashboard/%2F%5Cevil", "/dashboard/%5C%5Cevil.example", "/dashboard/%5Cevil.example", "/dashboard//evil.example",
                     "/dashboard/%2F%2Fevil.example", "/dashboard/https:%2F%2Fevil.example",
                     "/dashboard/%09%2F%2Fevil.example", "/dashboard/evil.example%5C", "/dashboard/x%00y"]


@pytest.mark.parametrize("path", REDIRECT_ATTEMPTS)
def test_dashboard_redirects_stay_on_this_origin(secured, path):
    gw, _ = secured
    r = httpx.get(gw.url + path, timeout=10, follow_redirects=False)
    location = r.headers.get("location")
    if location is not None:
        # resolve as a browser does: it reads a backslash in a URL as a slash (WHATWG URL)
        target = urljoin((gw.url + path).replace("\\", "/"), location.replace("\\", "/"))
        assert target.startswith(gw.url + "/"), (path, location)
    r = httpx.get(gw.url + "/dashboard", timeout=10, follow_redirects=False)
    assert r.status_code == 308 and urljoin(gw.url + "/dashboard", r.headers["location"]) == gw.url + "/dashboard/"


def test_runtime_folder_is_not_the_world_writable_default(tmp_path):
    from referral_service.gateway.ratelimit import runtime_dir

    folder = runtime_dir()
    assert folder != Path("/dev/shm") and stat.S_IMODE(folder.stat().st_mode) == 0o700
