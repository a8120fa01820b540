"""Several gateway hosts in front of one database: one rate limit and one in-flight cap shared through a real
Redis server (started here, on a free port), local limits while Redis is away, and schema reloads reaching
every gateway.

Each gateway has its own local table (its own port names it), so a budget that holds across two of them can
only be Redis's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import psycopg
import pytest

from referral_service import config, localdb
from referral_service.gateway.ratelimit import SharedLimiter
from referral_service.gateway.ratelimit_redis import RedisLimiter
from tests.conftest import app_gateway_env
from tests.reliability.harness import wait_for
from tests.support import GatewayProcess, gateway_process

LIMIT = 12
PATH = "/offers?limit=1"


@contextmanager
def redis_server(port: int) -> Iterator[str]:
    """A throwaway redis-server (no persistence) on 127.0.0.1:`port`; never the machine's 6379."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: scripts/bootstrap.sh test installs it")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--protected-mode", "yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: localdb.port_in_use(port), 10, "redis-server listens", proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _env(app_db_url: str, secrets: config.Secrets, redis_url: str, tmp) -> dict[str, str]:
    return app_gateway_env(app_db_url, secrets, REFERRAL_RATE_LIMIT=f"{LIMIT}/60", REFERRAL_RATELIMIT_URL=redis_url,
                           REFERRAL_CLIENT_MAX_IN_FLIGHT="0", REFERRAL_TRUSTED_PROXIES="127.0.0.1/32")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server(localdb.free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def two(app_db_url: str, secrets: config.Secrets, redis_url: str, tmp_path_factory) -> Iterator[list[GatewayProcess]]:
    folder = tmp_path_factory.mktemp("many-gateways")
    with ExitStack() as stack:
        yield [stack.enter_context(gateway_process(_env(app_db_url, secrets, redis_url, folder), folder / f"gw{i}.log"))
               for i in range(2)]


def _hits(gw: GatewayProcess, client: httpx.Client, address: str) -> httpx.Response:
    # the test is the trusted proxy: each test is a client of its own, by X-Forwarded-For
    return client.get(gw.url + PATH, headers={"x-forwarded-for": address})


def test_one_rate_limit_is_shared_by_two_gateways(two: list[GatewayProcess]) -> None:
    statuses, remaining = [], []
    with httpx.Client(timeout=10) as client:
        for i in range(LIMIT + 6):
            reply = _hits(two[i % 2], client, "10.0.0.1")
            statuses.append(reply.status_code)
            remaining.append(reply.headers.get("ratelimit-remaining"))
    assert statuses.count(200) == LIMIT, statuses  # not LIMIT on each gateway
    assert set(statuses[LIMIT:]) == {429}, statuses
    assert remaining[:3] == [str(LIMIT - 1), str(LIMIT - 2), str(LIMIT - 3)]  # one budget, counted across both
    for gw in two:
        metrics = httpx.get(gw.admin_url + "/metrics", timeout=10).text
        assert "referral_ratelimit_shared_store_up 1.0" in metrics


def test_the_in_flight_cap_holds_across_hosts(redis_url: str, tmp_path) -> None:
    async def scenario() -> None:
        hosts = [RedisLimiter(redis_url, SharedLimiter(tmp_path / f"table{i}")) for i in range(2)]
        try:
            first = await hosts[0].enter("sub:cap-test", 2)
            second = await hosts[1].enter("sub:cap-test", 2)
            assert first and second
            assert await hosts[0].enter("sub:cap-test", 2) is None  # the third, on either host, waits
            assert await hosts[1].enter("sub:cap-test", 2) is None
            assert await hosts[1].enter("sub:other-client", 2)
            await hosts[0].leave("sub:cap-test", first)
            assert await hosts[1].enter("sub:cap-test", 2)
        finally:
            for h in hosts:
                await h.aclose()
                h.local.close()

    asyncio.run(scenario())


def test_without_redis_the_gateway_limits_locally_and_says_so(app_db_url: str, secrets: config.Secrets,
                                                              tmp_path) -> None:
    port = localdb.free_port()  # nothing listens there yet
    env = _env(app_db_url, secrets, f"redis://127.0.0.1:{port}/0", tmp_path)
    with gateway_process(env, tmp_path / "gw.log") as gw, httpx.Client(timeout=10) as client:
        statuses = [_hits(gw, client, "10.0.0.2").status_code for _ in range(LIMIT + 2)]
        assert statuses == [200] * LIMIT + [429, 429]  # this host's own table enforces the limit
        metrics = httpx.get(gw.admin_url + "/metrics", timeout=10).text
        assert "referral_ratelimit_shared_store_up 0.0" in metrics
        assert "referral_ratelimit_local_fallbacks_total" in metrics
        assert "unreachable" in gw.log.read_text() and "this host limits on its own" in gw.log.read_text()
        with redis_server(port):
            def back() -> bool:
                _hits(gw, client, "10.0.0.2")
                return "referral_ratelimit_shared_store_up 1.0" in httpx.get(gw.admin_url + "/metrics").text
            wait_for(back, 10, "limits shared again once Redis answers")
        assert "answers again" in gw.log.read_text()


def test_a_schema_reload_reaches_every_gateway(two: list[GatewayProcess], app_db_url: str) -> None:
    name = f"reload_probe_{os.getpid()}"
    polls = iter(range(1, 1 << 16))
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute(f"create view api.{name} with (security_invoker) as select 1 as one")
        conn.execute(f"grant select on api.{name} to anonymous")
        try:
            conn.execute("notify pgrst, 'reload schema'")
            for gw in two:  # each gateway LISTENs on its own connection
                def sees(gw: GatewayProcess = gw) -> bool:
                    n = next(polls)  # a new client each poll: the rate limit stays out of the way
                    headers = {"x-forwarded-for": f"10.9.{n >> 8}.{n & 255}"}
                    return httpx.get(f"{gw.url}/{name}", headers=headers, timeout=10).status_code == 200
                wait_for(sees, 10, f"{gw.url} sees {name}")
        finally:
            conn.execute(f"drop view api.{name}")
            conn.execute("notify pgrst, 'reload schema'")
