"""Migration runner: applies migrations/NNN_name.sql in order, once each, each in one transaction.

Applied files are recorded with a SHA-256 of their content; an applied file that changed is refused,
because the database no longer matches what the file says. A database that has applied migrations this
code does not know (a newer database than the code) is refused too, unless forced. A session advisory
lock makes concurrent runners wait for each other, so only one applies a given file.
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
NEW_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")

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


@dataclass(frozen=True)
class Status:
    """How the database's record compares with the files of this code."""

    applied: list[str]  # file names, applied and unchanged
    pending: list[str]  # files not applied yet
    changed: list[str]  # applied, but the file's checksum differs from the recorded one
    unknown: list[str]  # recorded in the database, no file here (the database is newer than the code)

    @property
    def ok(self) -> bool:
        return not (self.pending or self.changed or self.unknown)


class MigrationError(OperatorError):
    pass


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or config.MIGRATIONS_DIR
    if not directory.is_dir():
        raise MigrationError(f"no migrations folder at {directory}: set REFERRAL_MIGRATIONS_DIR, "
                             f"or reinstall the package (the wheel ships them)")
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNN_lower_snake.sql")
        version = match.group(1)
        if version in found:
            raise MigrationError(f"two migrations share number {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, path)
    if not found:
        raise MigrationError(f"no migration files (NNN_name.sql) in {directory}: nothing would be applied; "
                             f"set REFERRAL_MIGRATIONS_DIR to the folder that holds them")
    return list(found.values())


def _recorded(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """version -> (file name, checksum) as recorded; {} for a database never migrated."""
    exists = conn.execute("select to_regclass('schema_migrations.applied') is not null").fetchone()[0]
    if not exists:
        return {}
    rows = conn.execute("select version, file_name, checksum from schema_migrations.applied").fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def compare(migrations: list[Migration], recorded: dict[str, tuple[str, str]]) -> Status:
    files = {m.version: m for m in migrations}
    applied, pending, changed = [], [], []
    for m in migrations:
        if m.version not in recorded:
            pending.append(m.path.name)
        elif recorded[m.version][1] != m.checksum:
            changed.append(m.path.name)
        else:
            applied.append(m.path.name)
    unknown = [name for version, (name, _) in sorted(recorded.items()) if version not in files]
    return Status(applied, pending, changed, unknown)


def status(url: str, directory: Path | None = None) -> Status:
    migrations = discover(directory)
    with psycopg.connect(url, autocommit=True) as conn:
        return compare(migrations, _recorded(conn))


def migrate(url: str, directory: Path | None = None, log=print, force: bool = False) -> list[str]:
    """Apply pending migrations; returns the names of the files applied.

    Refuses (before applying anything) an applied file that changed, and, unless `force`, a database that
    records migrations this code does not have."""
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            conn.execute(BOOKKEEPING)
            state = compare(migrations, _recorded(conn))
            if state.changed:
                raise MigrationError(
                    f"{state.changed[0]} was changed after it was applied (checksum differs); "
                    f"restore the original and put the change in a new migration")
            if state.unknown and not force:
                raise MigrationError(
                    f"the database has {len(state.unknown)} migration(s) this code does not know "
                    f"({', '.join(state.unknown)}): it is newer than the code; deploy the newer code, "
                    f"or run `referral-service migrate --force` to apply this code's pending ones anyway")
            pending = set(state.pending)
            for m in migrations:
                if m.path.name in pending:
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


def new(name: str, directory: Path | None = None) -> Path:
    """Create the next numbered, empty migration file `NNN_name.sql` in the checkout's folder."""
    directory = directory or config.MIGRATIONS_DIR
    if not NEW_NAME.match(name):
        raise MigrationError(f"{name!r}: a migration name is lower_snake_case (letters, digits, _)")
    numbers = [int(m.group(1)) for p in directory.glob("*.sql") if (m := FILE_NAME.match(p.name))]
    number = max(numbers, default=0) + 1
    if number > 999:
        raise MigrationError("migration numbers are three digits and 999 is taken")
    path = directory / f"{number:03d}_{name}.sql"
    with path.open("x") as f:  # never overwrite: another runner may have taken the number meanwhile
        f.write(f"-- {number:03d}_{name}: what this migration changes, and why.\n")
    return path
