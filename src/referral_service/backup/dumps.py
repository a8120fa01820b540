"""Logical backups: pg_dump in custom format, a manifest from the same snapshot, the success record.

Every DSN here should carry superuser rights (or at least ownership plus BYPASSRLS): pg_dump refuses to dump
tables whose rows RLS would filter, and the verification must see every row.

A dump must never hand out the JWT signing key (whoever holds it can forge an admin token): the rows of
SECRET_TABLES are left out of every dump and manifest, `restore` puts the secrets back from the environment,
and everything written lives in a 0700 folder as 0600 files, private from the moment each file exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from .common import BackupError, connect, dbname, pg_tool, redact, split_secret, tail
from .files import LAST_SUCCESS_FILE, METRICS_FILE, Warn, create_private, private_folder, write_json, write_private
from .retention import DEFAULT_PREFIX, STAMP, apply_retention, check_keep, manifest_path, stamp_time
from .verify import SECRET_TABLES, table_states, verify_dump

# (tables done, tables total, table just started) — the CLI turns this into a rich progress bar.
Progress = Callable[[int, int, str], None]

# What pg_dump will print "dumping contents of table" for: our tables plus extension configuration tables.
_DUMPED_TABLE_COUNT = """
select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and c.relpersistence <> 't'
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%%'
  and (not exists (select from pg_depend d
                   where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
       or c.oid in (select unnest(extconfig) from pg_extension))
  and n.nspname || '.' || c.relname <> all(%s)
"""


def backup(
    dsn: str,
    out_dir: str | Path,
    keep: int | None = None,
    progress: Progress | None = None,
    *,
    verify: bool = False,
    scratch_dbname: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    warn: Warn | None = None,
) -> Path:
    """Dump the database in `dsn` to `out_dir/<prefix>-YYYYmmddTHHMMSSZ.dump` (custom format, -Z6).

    The dump and a manifest of per-table row counts and checksums are taken from one exported snapshot,
    so verification compares the restore with exactly what was dumped even while the service writes.
    With `verify`, the dump is restored into a scratch database and compared before it counts as a success;
    a dump that fails verification is renamed `*.dump.failed` so retention never counts it.
    `keep` deletes all but the newest N dumps, after (and only after) the new one succeeded.
    The rows of SECRET_TABLES are not in the dump; `out_dir` is made private first (see private_folder).
    """
    check_keep(keep)
    out = private_folder(out_dir, warn)
    final = _new_dump_path(out, prefix)
    partial = final.with_name(f".{final.name}.partial")
    try:
        states = _dump(dsn, partial, progress)
        os.replace(partial, final)
        write_json(manifest_path(final), {
            "format": 1,
            "database": dbname(dsn),
            "taken_at": stamp_time(final).isoformat(),
            "tables": {name: {"rows": s.rows, "md5": s.md5} for name, s in states.items()},
            "data_excluded": list(SECRET_TABLES),
        })
    except OSError as exc:  # a full disk, a folder removed under us: one line, no half-written dump left
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write the backup into {out}: {exc.strerror or exc}") from None

    report = None
    if verify:
        try:
            report = verify_dump(final, dsn, scratch_dbname)
        except BackupError:
            failed = final.with_name(final.name + ".failed")
            os.replace(final, failed)
            raise
    record_success(out, final, verified=report is not None)
    if keep is not None:
        apply_retention(out, keep, prefix=prefix)
    return final


def _dump(dsn: str, partial: Path, progress: Progress | None) -> dict:
    """pg_dump into `partial` and the table states, both in one exported snapshot."""
    conninfo, env = split_secret(dsn)
    try:
        with connect(dsn) as conn:
            # The snapshot lives as long as this transaction; pg_dump attaches to it with --snapshot.
            conn.execute("begin isolation level repeatable read, read only")
            snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
            total = conn.execute(_DUMPED_TABLE_COUNT, (list(SECRET_TABLES),)).fetchone()[0]
            _run_pg_dump(conninfo, env, snapshot, partial, total, progress)
            states = table_states(conn)
            conn.execute("commit")
    except psycopg.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {redact(dsn)} failed: {exc}") from exc
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    return states


def _new_dump_path(out: Path, prefix: str) -> Path:
    # Names carry whole seconds only: wait for the next second rather than invent a suffix that sorts wrong.
    while True:
        path = out / f"{prefix}-{datetime.now(UTC).strftime(STAMP)}.dump"
        if not path.exists():
            return path
        time.sleep(0.2)


def _run_pg_dump(conninfo: str, env: dict[str, str], snapshot: str, target: Path, total: int,
                 progress: Progress | None) -> None:
    command = [pg_tool("pg_dump"), "--format=custom", "--compress=6", "--verbose",
               f"--snapshot={snapshot}", f"--file={target}", f"--dbname={conninfo}",
               *(f"--exclude-table-data={name}" for name in SECRET_TABLES)]
    done = 0
    log: list[str] = []
    if progress:
        progress(0, total, "")
    # The file exists, 0600, before pg_dump opens it (pg_dump truncates it and keeps its mode); the umask
    # covers anything else pg_dump might create.
    os.close(create_private(target))
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                          env=env, umask=0o077) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            match = re.search(r'dumping contents of table "(.+)"', line)
            if match:
                done += 1
                if progress:
                    progress(min(done, total), max(total, done), match.group(1))
    if proc.returncode != 0:
        raise BackupError(f"pg_dump exited with {proc.returncode}:\n{tail(''.join(log))}")
    if progress:
        progress(max(total, done), max(total, done), "")


def record_success(out_dir: str | Path, dump: Path, verified: bool) -> None:
    """Write last_success.json and a Prometheus textfile (node_exporter's textfile collector reads it).

    Both feed the `referral_backup_last_success_timestamp_seconds` alert; the gateway's /metrics reads the
    same figure from internal.backup_runs (database-side), these files serve hosts without the gateway.
    """
    out = Path(out_dir)
    now = time.time()
    write_json(out / LAST_SUCCESS_FILE, {
        "file": dump.name,
        "finished_at": datetime.fromtimestamp(now, UTC).isoformat(),
        "timestamp": now,
        "size_bytes": dump.stat().st_size,
        "verified": verified,
    })
    metrics = (
        "# HELP referral_backup_last_success_timestamp_seconds Unix time of the newest successful backup.\n"
        "# TYPE referral_backup_last_success_timestamp_seconds gauge\n"
        f"referral_backup_last_success_timestamp_seconds {now:.3f}\n"
        "# HELP referral_backup_last_size_bytes Size of the newest successful backup.\n"
        "# TYPE referral_backup_last_size_bytes gauge\n"
        f"referral_backup_last_size_bytes {dump.stat().st_size}\n"
    )
    write_private(out / METRICS_FILE, metrics)


def last_success(out_dir: str | Path) -> dict | None:
    """The record written by `record_success`, or None when no backup has succeeded yet."""
    path = Path(out_dir) / LAST_SUCCESS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
