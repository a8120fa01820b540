"""What each request costs beyond its own work (issue 17): no per-request library log lines at level info."""

from __future__ import annotations

import json
import time

import httpx

from tests.conftest import app_gateway_env
from tests.support import gateway_process


def test_no_pool_chatter_per_request(app_db_url, secrets, tmp_path):
    """psycopg_pool logs connection requested/given/returned at INFO for every request: three lines of noise
    and a third of the gateway's CPU on a one-row read. Access lines stay."""
    log = tmp_path / "gateway.log"
    with gateway_process(app_gateway_env(app_db_url, secrets), log) as gw:
        for _ in range(5):
            assert httpx.get(gw.url + "/offers?limit=1", timeout=10).status_code == 200
        time.sleep(0.3)  # the process writes its log asynchronously to our reads
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert sum(r.get("event") == "request" and r.get("path") == "/offers" for r in records) == 5
    chatter = [r["event"] for r in records if r.get("logger") == "psycopg.pool" and r.get("level") == "info"
               and r["event"].startswith(("connection requested", "connection given", "returning connection"))]
    assert chatter == []
