"""Migration runner: applies migrations/NNN_name.sql in order, once each, each in one transaction.

Applied files are recorded with a SHA-256 of their content; an applied file that changed is refused,
because the database no longer matches what the file says. A session advisory lock makes concurrent
runners wait for each other, so only one applies a given file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from . import config
from .errors import OperatorError

LOCK_KEY = 7_254_331_001  # arbitrary, fixed: identifies "the referral-service migration runner"
FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

BOOKKEEPING = """
create schema if not exists schema_migrations;
comment on schema schema_migrations is 'Bookkeeping of the migration runner (not exposed).';
create table if not exists schema_migrations.applied (
    version    text primary key,
    file_name  text not null,
    checksum   text not null,
    applied_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(OperatorError):
    pass


def discover(directory: Path = config.MIGRATIONS_DIR) -> list[Migration]:
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNN_lower_snake.sql")
        version = match.group(1)
        if version in found:
            raise MigrationError(f"two migrations share number {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, path)
    return list(found.values())


def migrate(url: str, directory: Path = config.MIGRATIONS_DIR, log=print) -> list[str]:
    """Apply pending migrations; returns the names of the files applied."""
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            conn.execute(BOOKKEEPING)
            recorded = dict(conn.execute("select version, checksum from schema_migrations.applied").fetchall())
            for m in migrations:
                if m.version in recorded:
                    if recorded[m.version] != m.checksum:
                        raise MigrationError(
                            f"{m.path.name} was changed after it was applied (checksum differs); "
                            f"restore the original and put the change in a new migration"
                        )
                    continue
                _apply(conn, m)
                applied_now.append(m.path.name)
                log(f"applied {m.path.name}")
            if applied_now:
                conn.execute("notify pgrst, 'reload schema'")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", [LOCK_KEY])
    return applied_now


def _apply(conn: psycopg.Connection, m: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(m.sql)
            conn.execute(
                "insert into schema_migrations.applied (version, file_name, checksum) values (%s, %s, %s)",
                [m.version, m.path.name, m.checksum],
            )
    except psycopg.Error as exc:
        diag = exc.diag
        where = f" ({diag.context.strip().splitlines()[0]})" if diag.context else ""
        raise MigrationError(f"{m.path.name} failed and was rolled back: {diag.message_primary or exc}{where}") from exc
