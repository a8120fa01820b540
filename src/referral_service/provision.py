"""After migrating: put the environment's secrets into the database, and demo data into an empty one."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

from .config import Secrets

DEMO_ADMIN_EMAIL = "admin@example.com"


def provision(url: str, secrets: Secrets) -> None:
    """Set the authenticator's password and the JWT signing key (idempotent; rotates them when changed)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role authenticator password {}").format(secrets.authenticator_password))
        conn.execute(
            "insert into internal.secrets (name, value) values ('jwt_secret', %s)"
            " on conflict (name) do update set value = excluded.value",
            [secrets.jwt_secret],
        )


def load_demo_data(url: str, secrets: Secrets) -> bool:
    """Demo offers and a demo admin, only when the database has no offers and no users yet."""
    with psycopg.connect(url) as conn:
        empty = conn.execute(
            "select not exists (select from api.offers) and not exists (select from internal.users)"
        ).fetchone()[0]
        if not empty:
            return False
        conn.execute(
            "select internal.create_user(%s, %s, 'admin')", [DEMO_ADMIN_EMAIL, secrets.demo_admin_password]
        )
        conn.execute(resources.files(__package__).joinpath("demo.sql").read_text())
        conn.execute("select internal.refresh_rollups(now())")  # the dashboard reads rollups, not raw events
    return True


def create_user(url: str, email: str, password: str, role: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute("select internal.create_user(%s, %s, %s)", [email, password, role]).fetchone()[0])


def record_backup(url: str, file: str, size: int | None, verified: bool, ok: bool, error: str | None = None) -> None:
    """One row in internal.backup_runs: what the dashboard and the backup-age alert read."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into internal.backup_runs (file, size_bytes, verified, ok, error) values (%s, %s, %s, %s, %s)",
            [file, size, verified, ok, error],
        )
