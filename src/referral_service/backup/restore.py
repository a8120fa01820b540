"""Restoring a logical dump: into a new database (`--target`), or in place of the live one (`--replace`).

A replace never drops anything: the dump is restored into a staging database first (the live one keeps
serving meanwhile), then, with connections to the live database refused, both are renamed in one transaction
(live -> <name>_before_restore_<stamp>, staging -> live). pg_cron's part of the dump is restored after the swap,
once the restored database carries the cron database's name (see cron.py for why only then).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from .. import provision
from ..config import Secrets
from . import cron
from .common import BackupError, connect, dbname, pg_tool, split_secret, tail, with_db

# (steps done, steps total, what was just done)
Progress = Callable[[int, int, str], None]
_PG_NAME_MAX = 63
_STEP = re.compile(r"pg_restore: (?:creating|processing|executing) (.+)")


@dataclass
class RestoreResult:
    database: str
    skipped: list[str] = field(default_factory=list)  # archive entries left out (pg_cron), as pg_restore -l names them
    secrets_installed: bool = False  # the environment's secrets were written into the restored database
    jobs: list[str] = field(default_factory=list)  # pg_cron jobs that now run in the restored database
    kept_as: str | None = None  # --replace: the name the previous database lives on under
    # pg_cron's scheduler ends for good when its database's sessions are ended for the swap (it exits cleanly,
    # so the postmaster does not start it again): PostgreSQL must restart before the jobs run again.
    restart_needed: bool = False


def inspect_dump(path: str | Path) -> tuple[str, str]:
    """The archive's table of contents and the name of the database it was dumped from.

    Anything that is not a readable custom-format dump is one BackupError saying what the file is instead.
    """
    dump = Path(path)
    if not dump.exists():
        raise BackupError(f"no such dump: {dump}")
    if not dump.is_file():
        raise BackupError(f"{dump} is not a file: restore takes a dump written by `referral-service backup`")
    with dump.open("rb") as f:
        head = f.read(512)
    if not head.startswith(b"PGDMP"):
        raise BackupError(f"{dump} is not a dump written by `referral-service backup` (pg_dump custom format)"
                          + _what_it_is(head))
    proc = subprocess.run([pg_tool("pg_restore"), "--list", "--verbose", str(dump)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise BackupError(f"{dump} is damaged: pg_restore cannot read its contents ({reason})")
    source = re.search(r"^;\s+dbname: (.+)$", proc.stdout, re.MULTILINE)
    return proc.stdout, source.group(1).strip() if source else ""


def _what_it_is(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return ": it is gzip-compressed (gunzip it first if it is a dump)"
    if head.lstrip().startswith((b"--", b"SET ", b"CREATE ", b"\\restrict")):
        return ": it looks like a plain SQL script (run those with psql)"
    if not head:
        return ": it is empty"
    return ""


def restore(dump_path: str | Path, target_dsn: str, create: bool = True, secrets: Secrets | None = None,
            progress: Progress | None = None, *, schedule_jobs: bool = False) -> RestoreResult:
    """Restore a custom-format dump into the database named in `target_dsn`, in one transaction.

    Dumps carry no secrets (SECRET_TABLES' rows are left out): with `secrets`, they are installed the way
    `migrate` does (provision.provision), so the restored database works with a gateway running on the same
    environment. `create` makes the database (it must not exist yet: see `replace`). Roles are cluster-wide and
    must exist in the target cluster; owners, grants and policies are restored as dumped.

    pg_cron: in the cron database the dump's extension and jobs come back as dumped (re-pointed at this name);
    anywhere else they are left out and, with `schedule_jobs` (what `referral-service restore --target` does),
    the dumped database's jobs are scheduled for the target as "<job>@<target>". Off by default: a scratch
    copy must not run the app's jobs.
    """
    dump = Path(dump_path)
    listing, source = inspect_dump(dump)
    target = dbname(target_dsn)
    conninfo, env = split_secret(target_dsn)
    cron_db = cron.cron_database(target_dsn)
    skip = set() if cron_db == target else cron.cron_entries(listing)
    if create:
        create_database(target_dsn, target)
    try:
        _pg_restore(dump, conninfo, env, listing, lambda entry: entry not in skip, progress)
        installed = _install_secrets(target_dsn, secrets)
        jobs: list[str] = []
        if cron_db == target:
            jobs = _adopt_jobs(target_dsn, source or target, [])
        elif schedule_jobs and cron_db:
            jobs = _schedule_copy(dump, env, target_dsn, cron_db, source, target)
    except (BackupError, psycopg.Error) as exc:
        if create:
            drop_database(target_dsn, target)
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"restore into {target} failed: {exc}") from exc
    skipped = [line.split(" ", 3)[3].strip() for line in listing.splitlines() if cron.entry_id(line) in skip]
    return RestoreResult(database=target, skipped=skipped, secrets_installed=installed, jobs=jobs)


def replace(dump_path: str | Path, live_dsn: str, secrets: Secrets | None = None,
            progress: Progress | None = None, *, swap_timeout: float = 15.0) -> RestoreResult:
    """Put the dump in place of the database named in `live_dsn`, keeping the old one under a dated name."""
    dump = Path(dump_path)
    listing, source = inspect_dump(dump)
    live = dbname(live_dsn)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    kept, staging = f"{live}_before_restore_{stamp}", f"{live}_restoring_{stamp}"
    if len(kept.encode()) > _PG_NAME_MAX:
        raise BackupError(f"database name {live} is too long to keep the old one beside it as {kept}")
    if not database_exists(live_dsn, live):
        return restore(dump, live_dsn, create=True, secrets=secrets, progress=progress)
    cron_db = cron.cron_database(live_dsn)
    staged = restore(dump, with_db(live_dsn, staging), create=True, secrets=secrets, progress=progress,
                     schedule_jobs=False)
    others: list[cron.Job] = []
    if cron_db == live:  # jobs the live cron table holds for other databases must survive the swap
        with psycopg.connect(live_dsn, autocommit=True) as conn:
            others = [job for job in cron.existing_jobs(conn) if job.database != live]
    try:
        swap(live_dsn, live, staging, kept, swap_timeout)
    except BackupError:
        drop_database(live_dsn, staging)
        raise
    result = RestoreResult(database=live, skipped=staged.skipped, secrets_installed=staged.secrets_installed,
                           kept_as=kept)
    if cron_db == live:
        conninfo, env = split_secret(live_dsn)
        skip = cron.cron_entries(listing)
        if skip:
            _pg_restore(dump, conninfo, env, listing, lambda entry: entry in skip, None)
        result.jobs = _adopt_jobs(live_dsn, source or live, others)
        result.skipped = []
        result.restart_needed = True
    return result


def swap(dsn: str, live: str, staging: str, kept: str, timeout: float = 15.0) -> None:
    """Rename live -> kept and staging -> live in one transaction, with the live database closed meanwhile.

    Connections to the live database are refused (ALLOW_CONNECTIONS false) and the open ones ended, so the
    gateway answers 503 for the moment of the swap and then reconnects, by name, to the restored database.
    """
    ident = sql.Identifier
    with psycopg.connect(with_db(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} allow_connections false").format(ident(live)))
        reopen = live
        try:
            _end_sessions(conn, live, timeout)
            with conn.transaction():
                conn.execute(sql.SQL("alter database {} rename to {}").format(ident(live), ident(kept)))
                conn.execute(sql.SQL("alter database {} rename to {}").format(ident(staging), ident(live)))
            reopen = kept
        except psycopg.Error as exc:
            raise BackupError(f"could not swap {staging} in for {live}: {exc}; {live} is unchanged") from exc
        finally:
            conn.execute(sql.SQL("alter database {} allow_connections true").format(ident(reopen)))


def _end_sessions(conn: psycopg.Connection, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while conn.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity"
                       " where datname = %s and pid <> pg_backend_pid()", [name]).fetchone()[0]:
        if time.monotonic() > deadline:
            raise BackupError(f"sessions on {name} did not end within {timeout:.0f} s; {name} is unchanged")
        time.sleep(0.1)


def _adopt_jobs(dsn: str, source: str, others: list[cron.Job]) -> list[str]:
    """In the cron database: pg_cron present, the dumped jobs pointed here, and `others` scheduled again."""
    target = dbname(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pg_cron")
        if source != target:
            conn.execute("update cron.job set database = %s where database = %s", [target, source])
        cron.schedule(conn, others)
        return [job.name for job in cron.existing_jobs(conn) if job.database == target]


def _schedule_copy(dump: Path, env: dict[str, str], target_dsn: str, cron_db: str, source: str,
                   target: str) -> list[str]:
    """The source database's jobs, scheduled for a copy under another name, as "<job>@<target>"."""
    jobs = cron.dumped_jobs(dump, env)
    with psycopg.connect(with_db(target_dsn, cron_db), autocommit=True) as conn:
        if not cron.installed(conn):
            return []
        if not any(job.database == source for job in jobs):  # the dump was not taken in the cron database
            jobs = cron.existing_jobs(conn)
        return cron.schedule(conn, cron.for_database(jobs, source, target, rename=True))


def _install_secrets(dsn: str, secrets: Secrets | None) -> bool:
    if secrets is None:
        return False
    with connect(dsn) as conn:
        if not conn.execute("select to_regclass('internal.secrets') is not null").fetchone()[0]:
            return False
    provision.provision(dsn, secrets)
    return True


def _pg_restore(dump: Path, conninfo: str, env: dict[str, str], listing: str, keep: Callable[[int], bool],
                progress: Progress | None) -> None:
    """pg_restore the entries `keep` selects, in one transaction, reporting each step it takes."""
    chosen = [line for line in listing.splitlines(True) if cron.entry_id(line) is not None]
    total = sum(1 for line in chosen if keep(cron.entry_id(line)))
    command = [pg_tool("pg_restore"), "--exit-on-error", "--single-transaction", "--verbose",
               f"--dbname={conninfo}"]
    with tempfile.TemporaryDirectory() as tmp:
        list_file = Path(tmp) / "restore.list"
        list_file.write_text("".join(line if keep(cron.entry_id(line)) else ";" + line for line in chosen))
        command += [f"--use-list={list_file}", str(dump)]
        _follow(command, env, total, progress)


def _follow(command: list[str], env: dict[str, str], total: int, progress: Progress | None) -> None:
    done, log = 0, []
    if progress:
        progress(0, total, "")
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            step = _STEP.match(line)
            if step and progress:
                done += 1
                progress(min(done, total), total, step.group(1).strip())
    if proc.returncode != 0:
        raise BackupError(f"pg_restore exited with {proc.returncode}:\n{tail(''.join(log))}")
    if progress:
        progress(total, total, "")


def database_exists(dsn: str, name: str) -> bool:
    with psycopg.connect(with_db(dsn, "postgres"), autocommit=True) as conn:
        return conn.execute("select exists (select from pg_database where datname = %s)", [name]).fetchone()[0]


def create_database(dsn: str, name: str) -> None:
    if database_exists(dsn, name):
        raise BackupError(f"database {name} already exists: restore with --target NEW_NAME, or --replace it "
                          f"(the old one is kept under a dated name)")
    with psycopg.connect(with_db(dsn, "postgres"), autocommit=True) as conn:
        # template0: template1 may carry objects that would collide with the dump's own.
        conn.execute(sql.SQL("create database {} template template0").format(sql.Identifier(name)))


def drop_database(dsn: str, name: str) -> None:
    """Drop a database this package made, and the pg_cron jobs it scheduled for it."""
    with psycopg.connect(with_db(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    cron.forget(dsn, name)
