"""The HTTP edge against a real service process (issue 10, items 2, 5, 6 and 15), spoken to over raw sockets:
httpx refuses to send most of what an attacker sends.

2. headers are bounded (431 in PostgREST's error shape, before the app) and merged in linear time;
5. a connection that never finishes its headers is cut at the header deadline, however it trickles; one
   address cannot hold more than its share of connections; idle keep-alive lasts ~30 s, not uvicorn's 5;
6. control characters anywhere in the request line never drop a response, never raise, never forge a log line;
15. /ready and /metrics live on the admin port (loopback only); the API port keeps /live and the dashboard.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.security.conftest import auth
from tests.support import GatewayProcess, gateway_process

HEADER_TIMEOUT = 1.5
CLIENT_CAP = 8
TOTAL_CAP = 12
ERROR_KEYS = ["code", "details", "hint", "message"]


@pytest.fixture(scope="module")
def edge(security_db, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = security_db.app_env(PGRST_SERVER_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                              PGRST_SERVER_MAX_CLIENT_CONNECTIONS=str(CLIENT_CAP),
                              PGRST_SERVER_MAX_CONNECTIONS=str(TOTAL_CAP))
    with gateway_process(env, tmp_path_factory.mktemp("edge") / "gateway.log") as gw:
        yield gw


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def connect(gw: GatewayProcess, source: str = "127.0.0.1", timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(gw.url)), timeout=timeout, source_address=(source, 0))


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset after its answer counts as a close)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head, then Content-Length bytes of body): its parts may arrive in several segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def exchange(gw: GatewayProcess, data: bytes, source: str = "127.0.0.1", timeout: float = 5) -> bytes:
    """Send `data` (from a thread: the server may answer before it has read it all) and read to the end."""
    with connect(gw, source, timeout) as sock:
        def push() -> None:
            try:
                sock.sendall(data)
            except OSError:
                pass  # refused midway: the answer is what matters

        sender = threading.Thread(target=push, daemon=True)
        sender.start()
        reply = read_all(sock)
        sender.join(timeout)
        return reply


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ", 2)[1])


def head_and_body(reply: bytes) -> tuple[dict[bytes, bytes], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def assert_error_shape(reply: bytes, status: int) -> dict:
    assert status_of(reply) == status, reply[:300]
    headers, body = head_and_body(reply)
    assert headers[b"content-type"].startswith(b"application/json")
    assert int(headers[b"content-length"]) == len(body)
    doc = json.loads(body)
    assert list(doc) == ERROR_KEYS and body == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return doc


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def victim_ms(gw: GatewayProcess) -> float:
    started = time.perf_counter()
    assert httpx.get(gw.url + "/live", timeout=5).status_code == 200
    return (time.perf_counter() - started) * 1000


# --- 2. headers ---------------------------------------------------------------------------------------


OVERSIZED = {
    "50k-repeated": ["X-A: b"] * 50_000,
    "101-distinct": [f"X-H{i}: v" for i in range(101)],
    "one-17KiB-value": ["X-Big: " + "v" * 17_000],
    "18KiB-of-cookies": [f"Cookie: c{i}={'v' * 400}" for i in range(45)],
    "endless-header-line": None,  # a header line that never ends
}


@pytest.mark.parametrize("case", OVERSIZED)
def test_oversized_headers_get_431_before_the_app(edge, case):
    request_id = f"oversized-{case}"
    if OVERSIZED[case] is None:
        data = get("/offers?limit=1", f"X-Request-Id: {request_id}").removesuffix(b"\r\n") + b"X-A: " + b"v" * 200_000
    else:
        data = get("/offers?limit=1", f"X-Request-Id: {request_id}", *OVERSIZED[case])
    started = time.perf_counter()
    reply = exchange(edge, data)
    elapsed = time.perf_counter() - started
    doc = assert_error_shape(reply, 431)
    assert doc["code"] == "PGRSTX31" and "100 headers" in doc["details"] and "16384 bytes" in doc["details"]
    assert head_and_body(reply)[0][b"connection"] == b"close"
    assert elapsed < 2, f"{elapsed:.2f}s to refuse"
    assert victim_ms(edge) < 500
    time.sleep(0.1)
    assert request_id.encode() not in edge.log.read_bytes()  # refused before the app: no access log line


def test_headers_within_the_caps_are_served(edge):
    reply = exchange(edge, get("/offers?limit=1", *[f"X-H{i}: {'v' * 100}" for i in range(90)]))
    assert status_of(reply) == 200


def test_repeated_headers_merge_in_linear_time(security_db, tmp_path):
    """With the caps off, 200,000 repeated headers reach request.build(): merged in linear time they cost
    well under a second (string concatenation took ~8 s here, blocking every other client meanwhile)."""
    env = security_db.app_env(PGRST_SERVER_MAX_HEADERS="0", PGRST_SERVER_MAX_HEADER_BYTES="0")
    with gateway_process(env, tmp_path / "gateway.log") as gw:
        data = get("/offers?limit=1", *(["X-A: b"] * 200_000))
        with connect(gw, timeout=30) as sock:
            sock.sendall(data)
            started = time.perf_counter()
            reply = read_all(sock)
        assert status_of(reply) == 200
        assert time.perf_counter() - started < 1.5


# --- 5. slow and idle connections ------------------------------------------------------------------


def test_a_silent_connection_is_closed_at_the_header_deadline(edge):
    with connect(edge, timeout=HEADER_TIMEOUT + 5) as sock:
        started = time.perf_counter()
        assert read_all(sock) == b""  # nothing asked, nothing answered
        assert HEADER_TIMEOUT - 0.2 < time.perf_counter() - started < HEADER_TIMEOUT + 1


@pytest.mark.parametrize("partial", [b"GET /off", b"GET /offers HTTP/1.1\r\nHost: x\r\nX-A: "], ids=["half-line", "half-headers"])
def test_a_half_request_gets_408_at_the_deadline(edge, partial):
    with connect(edge, timeout=HEADER_TIMEOUT + 5) as sock:
        sock.sendall(partial)
        started = time.perf_counter()
        reply = read_all(sock)
        assert time.perf_counter() - started < HEADER_TIMEOUT + 1
    assert assert_error_shape(reply, 408)["code"] == "PGRSTX08"


def trickle(sock: socket.socket, data: bytes, pause: float, limit: float) -> tuple[int, float]:
    """Send `data` a few bytes at a time until the server answers (or `limit` seconds): bytes sent, seconds."""
    started = time.perf_counter()
    sent = 0
    while sent < len(data) and time.perf_counter() - started < limit:
        if select.select([sock], [], [], 0)[0]:
            break  # the server has answered (or closed)
        try:
            sent += sock.send(data[sent:sent + 1])
        except OSError:
            break
        time.sleep(pause)
    return sent, time.perf_counter() - started


def test_trickling_does_not_extend_the_deadline(edge):
    request = get("/offers?limit=1", *[f"X-H{i}: v" for i in range(50)])
    with connect(edge, timeout=HEADER_TIMEOUT + 5) as sock:
        sent, elapsed = trickle(sock, request, 0.02, HEADER_TIMEOUT + 3)  # the whole request would take ~10 s
        reply = read_all(sock)
    assert sent < len(request)
    assert elapsed < HEADER_TIMEOUT + 1
    assert assert_error_shape(reply, 408)["code"] == "PGRSTX08"


def test_trickled_crlf_after_a_response_does_not_hold_a_connection(edge):
    """Bare CRLFs before a request are skipped by the parser (no request begins), and they stop the idle
    keep-alive timer: they must start the header deadline instead."""
    with connect(edge, timeout=HEADER_TIMEOUT + 5) as sock:
        sock.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sent, elapsed = trickle(sock, b"\r\n" * 1000, 0.05, HEADER_TIMEOUT + 3)
        read_all(sock)
    assert sent < 2000 and elapsed < HEADER_TIMEOUT + 1


def test_idle_keep_alive_outlasts_uvicorns_five_seconds(edge):
    keep = b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(edge, timeout=10) as sock:
        sock.sendall(keep)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        sock.sendall(keep)
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def _held(gw: GatewayProcess, sources: list[str]) -> list[socket.socket]:
    """Idle connections (the header deadline closes them after HEADER_TIMEOUT: be quick)."""
    socks = [connect(gw, source) for source in sources]
    time.sleep(0.2)  # let the server accept them all
    return socks


def _refused(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_one_address_cannot_hold_more_than_its_share(edge):
    held = _held(edge, ["127.0.0.1"] * CLIENT_CAP)
    try:
        with connect(edge, "127.0.0.1") as extra:
            assert _refused(extra), "the connection over the per-client cap was kept"
        # another client is served meanwhile
        reply = exchange(edge, get("/live"), source="127.0.0.2")
        assert status_of(reply) == 200
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert status_of(exchange(edge, get("/live"))) == 200  # the slots come back


def test_total_connections_are_capped(edge):
    held = _held(edge, [f"127.0.0.{10 + i}" for i in range(TOTAL_CAP)])
    try:
        with connect(edge, "127.0.0.99") as extra:
            assert _refused(extra), "the connection over the total cap was kept"
        assert httpx.get(edge.admin_url + "/ready", timeout=5).status_code == 200  # ops still get through
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert status_of(exchange(edge, get("/live"), source="127.0.0.99")) == 200


# --- 6. control characters ---------------------------------------------------------------------------

CONTROLS = [*range(0x00, 0x20), 0x7F]
POSITIONS = {
    "path": "/offers{c}x?limit=1",
    "query-key": "/offers?limit=1&x{c}y=eq.1",
    "query-value": "/offers?limit=1&title=eq.a{c}b",
    "rpc-arg": "/rpc/search_offers?search_term=a{c}b",
}


def _log_lines(gw: GatewayProcess) -> list[bytes]:
    return gw.log.read_bytes().split(b"\n")


@pytest.mark.parametrize("position", POSITIONS)
def test_control_characters_always_get_an_answer(edge, position):
    template = POSITIONS[position]
    for code in CONTROLS:
        for spelled in (f"%{code:02X}", f"%{code:02x}"):
            reply = exchange(edge, get(template.format(c=spelled)))
            status = status_of(reply)
            assert status not in (500, 503), (spelled, position, reply[:400])
            if status >= 400:
                assert_error_shape(reply, status)
        raw = template.format(c=chr(code)).encode("latin-1")
        reply = exchange(edge, b"GET " + raw + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply, f"no answer to a raw {code:#04x} in the {position}"
        status = status_of(reply)
        assert status < 500, (hex(code), position, reply[:400])
        if status >= 400:
            assert_error_shape(reply, status)
    text = edge.log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI" not in text


def test_control_characters_in_a_header_value_get_an_answer(edge):
    for code in [c for c in CONTROLS if c not in (0x09, 0x0A, 0x0D)]:  # HTAB is legal; CR and LF end the line
        reply = exchange(edge, get("/offers?limit=1", f"X-Note: a{chr(code)}b"))
        assert status_of(reply) in (200, 400), hex(code)
        if status_of(reply) == 400:
            assert_error_shape(reply, 400)
    reply = exchange(edge, get("/offers?limit=1", "X-Note: a\rb"))  # a bare CR
    assert status_of(reply) == 400 and assert_error_shape(reply, 400)["code"] == "PGRSTX40"


def test_control_characters_cannot_forge_an_access_log_line(edge):
    forged = '{"event":"request","method":"GET","path":"/forged","status":200,"role":"app_admin"}'
    marker = "forge-check"
    encoded = quote(forged, safe="")
    payloads = [f"/{marker}%0A{encoded}", f"/{marker}%0D%0A{encoded}", f"/{marker}%00%1B%5B31m%7F%E2%80%A8x",
                f"/{marker}%0B%0C%1C%1D%1E%85"]
    for path in payloads:
        assert status_of(exchange(edge, get(path, "X-Request-Id: forge-check-id"))) < 500
    time.sleep(0.3)
    entries = []
    for line in _log_lines(edge):
        if b"forged" in line or marker.encode() in line:
            entry = json.loads(line)  # every line with our bytes is one whole JSON object
            assert entry.get("path") != "/forged", line
            entries.append(entry)
    mine = [e for e in entries if e.get("request_id") == "forge-check-id"]
    assert len(mine) == len(payloads)
    for entry in mine:
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029" for ch in entry["path"])
        assert "%0A" in entry["path"] or "%00" in entry["path"] or "%0B" in entry["path"]


# --- 15. the admin port -----------------------------------------------------------------------------


def test_readiness_and_metrics_live_on_the_admin_port(edge):
    assert httpx.get(edge.admin_url + "/live").status_code == 200
    ready = httpx.get(edge.admin_url + "/ready")
    assert ready.status_code == 200 and ready.text == "ready"
    metrics = httpx.get(edge.admin_url + "/metrics")
    assert metrics.status_code == 200 and "referral_http_requests_total" in metrics.text
    assert httpx.get(edge.admin_url + "/offers").status_code == 404  # the API is not on the admin port


def test_the_api_port_shows_no_readiness_or_metrics(edge, secured):
    _, tokens = secured
    assert httpx.get(edge.url + "/live").text == "ok"  # for load balancers: no details
    for path in ("/ready", "/metrics", "/metrics/", "/METRICS"):
        for actor in ("anon", "user"):
            reply = httpx.get(edge.url + path, headers=auth(tokens[actor]))
            assert reply.status_code in (401, 404), (path, actor, reply.status_code)
            assert "referral_" not in reply.text and "database" not in reply.text
    assert httpx.get(edge.url + "/metrics", headers=auth("not.a.token")).status_code in (401, 404)
    # the dashboard's service panel: an admin's token reads the metrics through the API port
    admin = httpx.get(edge.url + "/metrics", headers=auth(tokens["admin"]))
    assert admin.status_code == 200 and "referral_http_requests_total" in admin.text


def test_the_admin_port_listens_on_loopback_only(edge):
    port = port_of(edge.admin_url)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_admin_port_equal_to_the_server_port_is_refused(security_db):
    env = {**os.environ, **security_db.app_env(), "PGRST_SERVER_PORT": "3999", "PGRST_ADMIN_SERVER_PORT": "3999"}
    done = subprocess.run([sys.executable, "-m", "referral_service.service"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert "PGRST_ADMIN_SERVER_PORT cannot be the same as PGRST_SERVER_PORT" in done.stderr


def test_compose_publishes_the_admin_port_on_loopback_only():
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker" / "docker-compose.yml").read_text())
    gateway = compose["services"]["gateway"]
    admin = gateway["environment"]["PGRST_ADMIN_SERVER_PORT"]
    published = [p for p in gateway["ports"] if str(p).endswith(f":{admin}")]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published)
    assert f":{admin}/live" in " ".join(gateway["healthcheck"]["test"])


def test_two_workers_share_both_sockets_and_the_limits(security_db, tmp_path):
    env = security_db.app_env(REFERRAL_WORKERS="2", PGRST_SERVER_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    with gateway_process(env, tmp_path / "gateway.log") as gw:
        assert httpx.get(gw.url + "/offers?limit=1").status_code == 200
        assert httpx.get(gw.admin_url + "/metrics").status_code == 200
        assert httpx.get(gw.url + "/metrics").status_code == 404
        assert assert_error_shape(exchange(gw, get("/live", *(["X-A: b"] * 200))), 431)["code"] == "PGRSTX31"
        with connect(gw, timeout=HEADER_TIMEOUT + 5) as sock:
            started = time.perf_counter()
            assert read_all(sock) == b""
            assert time.perf_counter() - started < HEADER_TIMEOUT + 1
