"""Gateways over a database of our own (fixture.sql): the tx-end setting absent (PostgREST's default), one
with `commit-allow-override` and plans enabled (direct and through PgBouncer), and one with `rollback`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support import bouncer_for, fresh_database, gateway_process, with_login

HERE = Path(__file__).parent
DB = "parity_tx"
SECRET = "parity-tx-secret-0123456789abcdef01234567"


@pytest.fixture(scope="session")
def ptx_db(superuser_dsn: str) -> str:
    return fresh_database(superuser_dsn, DB, (HERE / "fixture.sql").read_text())


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return {"PGRST_DB_URI": with_login(db_url, "ptx_authenticator", "ptx_authenticator", DB),
            "PGRST_DB_SCHEMAS": "ptx", "PGRST_DB_ANON_ROLE": "ptx_anon", "PGRST_JWT_SECRET": SECRET,
            "PGRST_DB_POOL": "2", **extra}


@contextlib.contextmanager
def _gateway(env: dict[str, str], folder: Path) -> Iterator[str]:
    with gateway_process(env, folder / "gateway.log", module="referral_service.gateway.server",
                         ready_path="/items?limit=0") as gw:
        yield gw.url


@pytest.fixture(scope="session")
def default_url(ptx_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PGRST_DB_TX_END and PGRST_DB_PLAN_ENABLED absent."""
    with _gateway(_env(ptx_db), tmp_path_factory.mktemp("ptx-default")) as url:
        yield url


@pytest.fixture(scope="session", params=["direct", "pgbouncer"])
def override_url(request: pytest.FixtureRequest, ptx_db: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = _env(ptx_db, PGRST_DB_TX_END="commit-allow-override", PGRST_DB_PLAN_ENABLED="true")
    folder = tmp_path_factory.mktemp(f"ptx-override-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "pgbouncer":
            bouncer = stack.enter_context(bouncer_for(ptx_db, {"ptx_authenticator": "ptx_authenticator"},
                                                      folder / "pgbouncer"))
            env.update(PGRST_DB_URI=bouncer.url("ptx_authenticator", "ptx_authenticator", DB),
                       PGRST_DB_LISTEN_URI=env["PGRST_DB_URI"], PGRST_DB_PREPARED_STATEMENTS="false")
        yield stack.enter_context(_gateway(env, folder))


@pytest.fixture(scope="session")
def rollback_url(ptx_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _gateway(_env(ptx_db, PGRST_DB_TX_END="rollback"), tmp_path_factory.mktemp("ptx-rollback")) as url:
        yield url


@pytest.fixture
def default(default_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=default_url, timeout=10) as c:
        yield c


@pytest.fixture
def gw(override_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=override_url, timeout=10) as c:
        yield c


@pytest.fixture
def rolling(rollback_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rollback_url, timeout=10) as c:
        yield c


@pytest.fixture
def sql(ptx_db: str) -> Callable[..., list[tuple]]:
    def run(query: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(ptx_db, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run
