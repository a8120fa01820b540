"""The security suites run against a throwaway cluster of their own: the admin fuzzer may delete anything."""

from __future__ import annotations

from collections.abc import Iterator

import uuid

import httpx
import psycopg
import pytest

from referral_service import config
from tests.reliability.conftest import FaultDb, throwaway_app_cluster
from tests.support import GatewayProcess as Gateway
from tests.support import gateway_process as gateway


@pytest.fixture(scope="session")
def security_db(secrets: config.Secrets) -> Iterator[FaultDb]:
    with throwaway_app_cluster("security-pg", secrets) as db:
        yield db


@pytest.fixture(scope="module")
def secured(security_db: FaultDb, tmp_path_factory) -> Iterator[tuple[Gateway, dict[str, str]]]:
    """A running service on the security cluster, and a bearer token per actor (anon has none)."""
    env = security_db.app_env(PGRST_DB_POOL="4", PGRST_DB_MAX_ROWS="1000")  # unset would be no limit
    with gateway(env, tmp_path_factory.mktemp("secured") / "gateway.log", ready_path="/ready") as gw:
        tokens = {"anon": ""}
        # fresh accounts per module: the admin fuzz run may have edited or deleted earlier ones
        accounts = {actor: (f"{actor}-{uuid.uuid4().hex[:8]}@security.example", "a long pass 123")
                    for actor in ("user", "admin")}
        with psycopg.connect(security_db.app_url, autocommit=True) as conn:
            for actor, (email, password) in accounts.items():
                conn.execute("select internal.create_user(%s, %s, %s)", [email, password, actor])
        for actor, (email, password) in accounts.items():
            r = httpx.post(gw.url + "/rpc/login", json={"email": email, "password": password}, timeout=10)
            r.raise_for_status()
            tokens[actor] = r.json()["access_token"]
        yield gw, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
