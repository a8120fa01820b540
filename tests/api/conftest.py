"""A real gateway process against a fresh `gateway_test` database loaded from fixture_schema.sql."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import psycopg
import pytest

HERE = Path(__file__).parent
SECRET = "gateway-test-secret-0123456789abcdef0123"
DB = "gateway_test"


def _with(url: str, db: str, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if user:
        netloc = f"{user}:{password}@{netloc}" if password else f"{user}@{netloc}"
    elif "@" in parts.netloc:
        netloc = parts.netloc
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{db}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    url: str
    db_url: str  # superuser URL of gateway_test
    token: Callable[..., str]

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kw)  # type: ignore[arg-type]


def make_token(secret: str = SECRET, **claims: object) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(scope="session")
def gateway_db(superuser_dsn: str) -> str:
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DB} with (force)")
        conn.execute(f"create database {DB}")
    url = _with(superuser_dsn, DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((HERE / "fixture_schema.sql").read_text())
    return url


@pytest.fixture(scope="session")
def gateway(gateway_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = _free_port()
    env = {
        **os.environ,
        "PGRST_DB_URI": _with(gateway_db, DB, "gw_authenticator", "gw_authenticator"),
        "PGRST_DB_SCHEMAS": "test",
        "PGRST_DB_ANON_ROLE": "gw_anon",
        "PGRST_JWT_SECRET": SECRET,
        "PGRST_SERVER_PORT": str(port),
        "PGRST_SERVER_HOST": "127.0.0.1",
        "PGRST_DB_MAX_ROWS": "100",
        "PGRST_DB_POOL": "4",
        "PGRST_DB_PRE_REQUEST": "test.pre_check",
    }
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "referral_service.gateway.server"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                out = log_path.read_text()
                raise RuntimeError(f"gateway exited: {out}")
            try:
                if httpx.get(url + "/authors?limit=0", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not become ready")
            time.sleep(0.1)
        yield Gateway(url, gateway_db, make_token)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as c:
        yield c


@pytest.fixture
def user_token(gateway: Gateway) -> str:
    return make_token(role="gw_user", sub="alice")


@pytest.fixture
def as_user(gateway: Gateway, user_token: str) -> Iterator[httpx.Client]:
    with gateway.client(headers={"Authorization": f"Bearer {user_token}"}) as c:
        yield c


@pytest.fixture
def sql(gateway: Gateway) -> Callable[..., list[tuple]]:
    """Run SQL as superuser in gateway_test (for setup and checks)."""

    def run(query: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(gateway.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run
