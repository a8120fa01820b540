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


def test_pool_hands_out_the_connection_returned_last(app_db_url):
    """psycopg_pool is first-in first-out: every request woke another backend in turn, with cold caches
    (PostgreSQL's CPU per request doubled). The gateway's pool reuses the warmest connection."""
    import asyncio

    from referral_service.gateway.app import LifoPool

    async def scenario() -> list[int]:
        async with LifoPool(app_db_url, min_size=3, max_size=3, open=False) as pool:
            await pool.wait()
            held = [await pool.getconn() for _ in range(3)]
            for conn in held:
                await pool.putconn(conn)
            pids = []
            for _ in range(4):
                conn = await pool.getconn()
                pids.append(conn.info.backend_pid)
                await pool.putconn(conn)
            return [held[-1].info.backend_pid, *pids]

    last_returned, *handed = asyncio.run(scenario())
    assert handed == [last_returned] * 4
