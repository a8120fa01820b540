"""Session fixtures: a throwaway PostgreSQL 15 cluster (pg_cron, pg_stat_statements) with the migrations applied.

The tests never touch the cluster that `make run` uses: they start their own on a free port and remove
it at the end. TEST_SUPERUSER_DSN (a superuser URL to database `postgres`) points them at another server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import psycopg
import pytest

from referral_service import config, localdb, provision
from referral_service.migrate import migrate
from tests.support import gateway_process, with_database, with_login


@pytest.fixture(scope="session")
def superuser_dsn() -> Iterator[str]:
    """Superuser URL to database `postgres` of the server the tests use."""
    if os.environ.get("TEST_SUPERUSER_DSN"):
        yield os.environ["TEST_SUPERUSER_DSN"]
        return
    # one cluster per test session, so that two sessions (two checkouts, two engineers) never collide
    cluster = localdb.Cluster(name=f"test-pg-{os.getpid()}", port=localdb.free_port())
    cluster.destroy()
    cluster.start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def secrets() -> config.Secrets:
    return config.load_secrets()


@pytest.fixture(scope="session")
def app_db_url(superuser_dsn: str, secrets: config.Secrets) -> str:
    """Superuser URL of a freshly migrated `referral_service` database."""
    url = with_database(superuser_dsn, config.DB_NAME)
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [config.DB_NAME]).fetchone():
            conn.execute(f'create database "{config.DB_NAME}"')
    migrate(url, log=lambda _line: None)
    provision.provision(url, secrets)
    return url


@pytest.fixture
def db(app_db_url: str) -> Iterator[psycopg.Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with psycopg.connect(app_db_url) as conn:
        yield conn
        conn.rollback()


def act_as(conn: psycopg.Connection, role: str, **claims) -> None:
    """Switch the transaction to an API role the way the gateway does (transaction-local settings)."""
    conn.execute(
        "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
        [role, json.dumps({"role": role, **claims})],
    )


def reset_role(conn: psycopg.Connection) -> None:
    conn.execute("reset role")


@dataclass(frozen=True)
class AppGateway:
    """A gateway serving the migrated app database, with one admin and one user account."""

    url: str
    admin_email: str
    admin_password: str
    user_email: str
    user_password: str
    admin_url: str = ""  # the service's admin server: /live, /ready, /metrics

    def login(self, email: str, password: str) -> str:
        reply = httpx.post(self.url + "/rpc/login", json={"email": email, "password": password}, timeout=10)
        reply.raise_for_status()
        return reply.json()["access_token"]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def app_gateway_env(app_db_url: str, secrets: config.Secrets, **extra: str) -> dict[str, str]:
    return {
        "PGRST_DB_URI": with_login(app_db_url, "authenticator", secrets.authenticator_password),
        "PGRST_DB_SCHEMAS": "api",
        "PGRST_DB_ANON_ROLE": "anonymous",
        "PGRST_JWT_SECRET": secrets.jwt_secret,
        "PGRST_DB_POOL": "4",
        "REFERRAL_RATE_LIMIT": "0",
        "REFERRAL_AUTH_RATE_LIMIT": "0",
        "REFERRAL_CLIENT_MAX_IN_FLIGHT": "0",  # tests of the cap set it themselves (tests/security/test_hardening.py)
        **extra,
    }


@pytest.fixture(scope="session")
def app_gateway(app_db_url: str, secrets: config.Secrets, tmp_path_factory) -> Iterator[AppGateway]:
    accounts = AppGateway("", "admin@test.example", "admin pass 123", "user@test.example", "user pass 123")
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        for email, password, role in [(accounts.admin_email, accounts.admin_password, "admin"),
                                      (accounts.user_email, accounts.user_password, "user")]:
            if not conn.execute("select 1 from internal.users where email = %s", [email]).fetchone():
                conn.execute("select internal.create_user(%s, %s, %s)", [email, password, role])
    log = tmp_path_factory.mktemp("app-gateway") / "gateway.log"
    with gateway_process(app_gateway_env(app_db_url, secrets), log) as gw:
        yield replace(accounts, url=gw.url, admin_url=gw.admin_url)
