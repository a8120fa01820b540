"""Parity tests (issue 13 items 1-4): their own `parity_test` database and two bare gateways on it, one with
aggregates enabled (PGRST_DB_AGGREGATES_ENABLED=true) and one with PostgREST's default (off). Direct only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import fresh_database, gateway_process, with_login

HERE = Path(__file__).parent
DB = "parity_test"
SECRET = "parity-test-secret-0123456789abcdef0123"


@pytest.fixture(scope="session")
def parity_db(superuser_dsn: str) -> str:
    return fresh_database(superuser_dsn, DB, (HERE / "fixture.sql").read_text())


def _gateway(parity_db: str, folder: Path, aggregates: bool) -> Iterator[str]:
    env = {
        "PGRST_DB_URI": with_login(parity_db, "parity_authenticator", "parity_authenticator", DB),
        "PGRST_DB_SCHEMAS": "parity",
        "PGRST_DB_ANON_ROLE": "parity_anon",
        "PGRST_JWT_SECRET": SECRET,
        "PGRST_DB_POOL": "2",
        "PGRST_DB_AGGREGATES_ENABLED": "true" if aggregates else "false",
    }
    with gateway_process(env, folder / "gateway.log", module="referral_service.gateway.server",
                         ready_path="/clients?limit=0") as gw:
        yield gw.url


@pytest.fixture(scope="session")
def parity_url(parity_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _gateway(parity_db, tmp_path_factory.mktemp("parity-agg"), True)


@pytest.fixture(scope="session")
def plain_url(parity_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _gateway(parity_db, tmp_path_factory.mktemp("parity-plain"), False)


@pytest.fixture
def http(parity_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parity_url, timeout=10) as c:
        yield c


@pytest.fixture
def plain(plain_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plain_url, timeout=10) as c:
        yield c
