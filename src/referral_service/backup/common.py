"""What every part of the backup package shares: its error type, the PostgreSQL client tools, connections."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import OperatorError

# Fixed output formats so that row text (and so the checksum) means the same on both sides of a comparison.
SESSION_SETTINGS = (
    "set timezone = 'UTC'",
    "set datestyle = 'ISO, YMD'",
    "set intervalstyle = 'postgres'",
    "set extra_float_digits = 3",
    "set bytea_output = 'hex'",
    "set row_security = off",  # error out instead of silently comparing a filtered view of a table
)


class BackupError(OperatorError):
    """An operator-facing failure: the message says what went wrong and what to look at."""


def pg_tool(name: str) -> str:
    """pg_dump/pg_restore must match the server's major version; Debian's /usr/bin ones are wrappers."""
    bindir = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")
    candidate = Path(bindir) / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install postgresql-client-15 or set PG_BINDIR")
    return found


def split_secret(dsn: str) -> tuple[str, dict[str, str]]:
    """Move the password from the conninfo into PGPASSWORD so it never shows in `ps` output."""
    params = conninfo_to_dict(dsn)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items()}), env


def dbname(dsn: str) -> str:
    name = conninfo_to_dict(dsn).get("dbname")
    if not name:
        raise BackupError(f"the connection string names no database: {redact(dsn)}")
    return str(name)


def with_db(dsn: str, name: str) -> str:
    return make_conninfo(dsn, dbname=name)


def redact(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def connect(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    for statement in SESSION_SETTINGS:
        conn.execute(statement)
    return conn


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(command: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise BackupError(f"{what} exited with {proc.returncode}:\n{tail(proc.stderr)}")
    return proc.stdout
