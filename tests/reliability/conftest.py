"""A PostgreSQL cluster of the fault tests' own, which they may stop, kill and restart freely.

It holds the migrated app database (with an admin and a user) and a tiny `chaos` database (slow function).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from referral_service import config, localdb, provision
from referral_service.migrate import migrate
from tests.conftest import app_gateway_env
from tests.support import throwaway_cluster, with_database
from tests.reliability.harness import start_cluster
from tests.support import with_login

HERE = Path(__file__).parent
ADMIN = ("admin@fault.example", "admin pass 123")
USER = ("user@fault.example", "user pass 123")


@dataclass(frozen=True)
class FaultDb:
    cluster: localdb.Cluster
    app_url: str  # superuser URL of referral_service
    chaos_url: str  # superuser URL of chaos
    secrets: config.Secrets

    def app_env(self, **extra: str) -> dict[str, str]:
        return app_gateway_env(self.app_url, self.secrets, **extra)

    def chaos_env(self, **extra: str) -> dict[str, str]:
        return {"PGRST_DB_URI": with_login(self.chaos_url, "chaos_auth", "chaos_auth"), "PGRST_DB_SCHEMAS": "chaos",
                "PGRST_DB_ANON_ROLE": "chaos_anon", "PGRST_JWT_SECRET": "chaos-secret-0123456789abcdef0123456789",
                **extra}


@contextmanager
def throwaway_app_cluster(name: str, secrets: config.Secrets) -> Iterator[FaultDb]:
    """A new cluster `name-<pid>`: migrated app database with an admin and a user, and the `chaos` database."""
    with throwaway_cluster(name) as cluster:
        app = cluster.url(config.DB_NAME)
        migrate(app, log=lambda _line: None)
        provision.provision(app, secrets)
        with psycopg.connect(app, autocommit=True) as conn:
            for (email, password), role in [(ADMIN, "admin"), (USER, "user")]:
                conn.execute("select internal.create_user(%s, %s, %s)", [email, password, role])
            conn.execute("create database chaos")
        chaos = with_database(app, "chaos")
        with psycopg.connect(chaos, autocommit=True) as conn:
            conn.execute((HERE / "chaos_schema.sql").read_text())
        yield FaultDb(cluster, app, chaos, secrets)


@pytest.fixture(scope="session")
def fault_db(secrets: config.Secrets) -> Iterator[FaultDb]:
    with throwaway_app_cluster("fault-pg", secrets) as db:
        yield db


@pytest.fixture
def fault(fault_db: FaultDb) -> FaultDb:
    """The fault cluster, running (an earlier test may have left it stopped)."""
    if not fault_db.cluster.running():
        start_cluster(fault_db.cluster)
    return fault_db
