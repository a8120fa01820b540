"""After migrating: put the environment's secrets into the database, and demo data into an empty one."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

from . import accounts
from .config import Secrets

DEMO_ADMIN_EMAIL = "admin@example.com"

# Server-side recorders that could keep a secret this session sends (a statement's text or its bound
# parameters), and the value that silences each for one transaction. pg_stat_statements keeps utility
# statements verbatim (ALTER ROLE ... PASSWORD is not normalised); log_statement and
# log_min_duration_statement print statements, and their bind parameters unless log_parameter_max_length = 0.
_QUIET = (
    ("pg_stat_statements.track_utility", "off"),
    ("pg_stat_statements.track", "none"),
    ("log_statement", "none"),
    ("log_min_duration_statement", "-1"),
    ("log_min_error_statement", "panic"),
    ("log_parameter_max_length", "0"),
    ("log_parameter_max_length_on_error", "0"),
)


def quiet_transaction(conn: psycopg.Connection) -> list[str]:
    """In the current transaction, stop statement statistics and logs from recording what follows.

    Each setting is made only where it exists (pg_stat_statements may not be loaded) and where this role
    may set it (most are superuser settings; PostgreSQL 15 can GRANT SET ON PARAMETER them). Returns the
    settings that could not be made, so a caller can say what still records.
    """
    missing = []
    for name, value in _QUIET:
        allowed = conn.execute(
            "select case when exists (select from pg_settings where name = %s)"
            " then has_parameter_privilege(%s, 'SET') else false end",
            [name, name]).fetchone()[0]
        if allowed:
            conn.execute("select set_config(%s, %s, true)", [name, value])
        else:
            missing.append(name)
    return missing


def scram_verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of `password`, computed here by libpq (PQencryptPasswordConn).

    The server stores a verifier it is given as it is, so the clear password never reaches the server.
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    if not verifier.startswith("SCRAM-SHA-256$"):
        raise RuntimeError("libpq did not produce a SCRAM-SHA-256 verifier")
    return verifier


def set_role_password(conn: psycopg.Connection, role: str, password: str) -> None:
    """ALTER ROLE ... PASSWORD with a client-side SCRAM verifier, never the clear password."""
    conn.execute(sql.SQL("alter role {} password {}").format(
        sql.Identifier(role), sql.Literal(scram_verifier(conn, role, password))))


def provision(url: str, secrets: Secrets) -> list[str]:
    """Install the authenticator's password and the JWT signing key where the database has none yet.

    Never replaces installed ones: a mismatch with the environment is refused (secrets.SecretsMismatch) and
    only `referral-service secrets rotate` changes them. Returns what was installed. The password goes as a
    SCRAM verifier computed here, the key as a bound parameter in a transaction nothing records.
    """
    from .secrets import install

    installed = install(url, secrets)
    accounts.configure(url)  # session settings from the environment, the common-password list (issue 11)
    return installed


def load_demo_data(url: str, secrets: Secrets) -> bool:
    """Demo offers and a demo admin, only when the database has no offers and no users yet."""
    with psycopg.connect(url) as conn:
        empty = conn.execute(
            "select not exists (select from api.offers) and not exists (select from internal.users)"
        ).fetchone()[0]
        if not empty:
            return False
        quiet_transaction(conn)  # the demo admin's password is a bound parameter: keep it out of the log
        conn.execute(
            "select internal.create_user(%s, %s, 'admin')", [DEMO_ADMIN_EMAIL, secrets.demo_admin_password]
        )
        conn.execute(resources.files(__package__).joinpath("demo.sql").read_text())
        conn.execute("select internal.refresh_rollups(now())")  # the dashboard reads rollups, not raw events
    return True


def create_user(url: str, email: str, password: str, role: str) -> str:
    with psycopg.connect(url) as conn:
        quiet_transaction(conn)  # the password is a bound parameter: keep it out of the server log
        return str(conn.execute("select internal.create_user(%s, %s, %s)", [email, password, role]).fetchone()[0])


def record_backup(url: str, file: str, size: int | None, verified: bool, ok: bool, error: str | None = None,
                  kind: str = "dump") -> None:
    """One row in internal.backup_runs: what the dashboard and the backup-age alert read.

    `kind` is "dump" (pg_dump) or the pgBackRest type ("full", "diff", "incr"; migration 022).
    """
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into internal.backup_runs (file, size_bytes, verified, ok, error, kind)"
            " values (%s, %s, %s, %s, %s, %s)",
            [file, size, verified, ok, error, kind],
        )
