"""A real gateway process against a fresh `gateway_test` database loaded from fixture_schema.sql."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest

from tests.support import bouncer_for, fresh_database, gateway_process, with_login

HERE = Path(__file__).parent
SECRET = "gateway-test-secret-0123456789abcdef0123"
DB = "gateway_test"


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
    return fresh_database(superuser_dsn, DB, (HERE / "fixture_schema.sql").read_text())


@pytest.fixture(scope="session", params=["direct", "pgbouncer"])
def gateway(request: pytest.FixtureRequest, gateway_db: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The whole API suite runs twice: straight to PostgreSQL, and through a real PgBouncer in
    transaction mode (no prepared statements; LISTEN on a direct connection)."""
    direct = with_login(gateway_db, "gw_authenticator", "gw_authenticator", DB)
    env = {
        "PGRST_DB_URI": direct,
        "PGRST_DB_SCHEMAS": "test",
        "PGRST_DB_ANON_ROLE": "gw_anon",
        "PGRST_JWT_SECRET": SECRET,
        "PGRST_DB_MAX_ROWS": "100",
        "PGRST_DB_POOL": "4",
        "PGRST_DB_PRE_REQUEST": "test.pre_check",
    }
    folder = tmp_path_factory.mktemp(f"gateway-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "pgbouncer":
            bouncer = stack.enter_context(
                bouncer_for(gateway_db, {"gw_authenticator": "gw_authenticator"}, folder / "pgbouncer"))
            env.update(PGRST_DB_URI=bouncer.url("gw_authenticator", "gw_authenticator", DB),
                       PGRST_DB_LISTEN_URI=direct, PGRST_DB_PREPARED_STATEMENTS="false")
        url = stack.enter_context(gateway_process(env, folder / "gateway.log", module="referral_service.gateway.server",
                                                  ready_path="/authors?limit=0")).url
        yield Gateway(url, gateway_db, make_token)


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
