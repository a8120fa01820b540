"""One log format (issue 12 item 10): every line the service writes is one JSON object on stdout, access lines
carry status, PGRST code, duration, role, user id, client and request id, PGRST_LOG_LEVEL filters, "listening"
comes only once the socket is bound, and a taken port is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest

from referral_service import localdb
from tests.conftest import app_gateway_env
from tests.support import gateway_process

CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "REFERRAL_"))}


def records(path: Path) -> list[dict]:
    time.sleep(0.3)  # the process writes its log asynchronously to our reads
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        record = json.loads(line)  # every line, not just the access lines
        assert isinstance(record, dict) and {"event", "level", "timestamp"} <= record.keys(), line
        parsed.append(record)
    return parsed


@pytest.fixture(scope="module")
def service(app_db_url, secrets, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "service.log"
    env = app_gateway_env(app_db_url, secrets, PGRST_DB_MAX_ROW="10")  # a typo: reported at start
    with gateway_process(env, log) as gw:
        yield gw


def test_every_line_is_json_with_access_fields(service, app_gateway):
    token = app_gateway.login(app_gateway.user_email, app_gateway.user_password)
    rid = f"logs-{uuid.uuid4().hex[:8]}"
    headers = {"X-Request-Id": rid + "-ok", "Authorization": f"Bearer {token}"}
    assert httpx.get(service.url + "/offers?limit=1", headers=headers, timeout=10).status_code == 200
    missing = httpx.get(service.url + "/no_such_table", headers={"X-Request-Id": rid + "-404"}, timeout=10)
    assert missing.status_code == 404
    logged = records(service.log)
    by_id = {r.get("request_id"): r for r in logged if r.get("event") == "request"}
    ok, notfound = by_id[rid + "-ok"], by_id[rid + "-404"]
    assert ok["level"] == "info" and ok["status"] == 200 and ok["code"] is None and ok["duration_ms"] >= 0
    assert ok["client"] == "127.0.0.1" and ok["path"] == "/offers" and ok["logger"] == "referral_service.access"
    assert ok["role"] == "app_user" and ok["user_id"] == jwt.decode(token, options={"verify_signature": False})["sub"]
    assert notfound["level"] == "warning" and notfound["status"] == 404 and notfound["code"] == "PGRST205"
    assert notfound["role"] == "anonymous" and notfound["user_id"] is None
    listening = [r for r in logged if r["event"] == "listening"]
    assert len(listening) == 1 and listening[0]["url"] == service.url
    assert listening[0]["admin_url"] == service.admin_url
    assert any("PGRST_DB_MAX_ROW is not a known setting (did you mean PGRST_DB_MAX_ROWS?)" in r["event"]
               and r["level"] == "warning" for r in logged)


def test_library_warnings_and_tracebacks_are_json_lines(tmp_path):
    """Records of the standard library (uvicorn, psycopg_pool, ours) and exceptions: one JSON line each."""
    script = (
        "import logging\n"
        "from referral_service import logging as L\n"
        "L.configure('info')\n"
        "logging.getLogger('uvicorn.error').warning('Invalid HTTP request received.')\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('uvicorn.error').exception('Exception in ASGI application')\n"
        "logging.getLogger('psycopg.pool').info('a %s message', 'formatted')\n"
        "L.get('referral_service.x').info('hello\\nforged', path='/a\\u2028b')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=CLEAN, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    warning, failure, pool, ours = (json.loads(line) for line in lines)
    assert (warning["level"], warning["logger"], warning["event"]) == ("warning", "uvicorn.error",
                                                                       "Invalid HTTP request received.")
    assert failure["level"] == "error" and "Traceback" in failure["exception"]
    assert "ZeroDivisionError" in failure["exception"]
    assert pool["event"] == "a formatted message" and pool["logger"] == "psycopg.pool"
    assert ours["event"] == "hello%0Aforged" and ours["path"] == "/a%E2%80%A8b"


def run_service(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "referral_service.service"], env={**CLEAN, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_log_level_filters_access_lines(app_db_url, secrets, tmp_path):
    env = app_gateway_env(app_db_url, secrets, PGRST_LOG_LEVEL="warn")
    with gateway_process(env, tmp_path / "warn.log") as gw:
        httpx.get(gw.url + "/offers?limit=1", headers={"X-Request-Id": "quiet-ok"}, timeout=10)
        httpx.get(gw.url + "/nothing_here", headers={"X-Request-Id": "loud-404"}, timeout=10)
        ids = {r.get("request_id") for r in records(gw.log)}
    assert "loud-404" in ids and "quiet-ok" not in ids


def test_bad_log_level_is_one_line(app_db_url, secrets):
    done = run_service(app_gateway_env(app_db_url, secrets, PGRST_LOG_LEVEL="verbose"))
    assert done.returncode == 2
    assert done.stderr.strip() == "referral-service: PGRST_LOG_LEVEL: Invalid logging level. Check your configuration."


def test_listening_is_logged_only_when_the_port_accepts(app_db_url, secrets, tmp_path):
    port, admin = localdb.free_port(), localdb.free_port()
    env = {**CLEAN, **app_gateway_env(app_db_url, secrets), "PGRST_SERVER_PORT": str(port),
           "PGRST_ADMIN_SERVER_PORT": str(admin)}
    proc = subprocess.Popen([sys.executable, "-m", "referral_service.service"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "listening":
                break
        for target in (port, admin):  # at once: no retry, no sleep
            socket.create_connection(("127.0.0.1", target), timeout=2).close()
    finally:
        proc.terminate()
        proc.wait(15)
        proc.stdout.close()


def test_taken_port_is_one_line_and_a_non_zero_exit(app_db_url, secrets):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_service(app_gateway_env(app_db_url, secrets, PGRST_SERVER_PORT=str(port),
                                           PGRST_ADMIN_SERVER_PORT=str(localdb.free_port())))
    assert done.returncode == 2
    assert done.stderr.strip() == f"referral-service: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert '"listening"' not in done.stdout
