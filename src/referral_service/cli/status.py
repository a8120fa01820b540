"""`referral-service status`: the whole local stack at a glance; exit 1 when something is wrong.

One line per part: the database (local cluster and its port, or DATABASE_URL), the gateway's API and admin
ports, PgBouncer, migrations, the newest backup, WAL archiving, and pg_cron jobs whose latest run failed.
A part that is off on purpose (no PgBouncer, WAL archiving not enabled) is reported, not counted as wrong.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

import click
import psycopg

from .. import config, localdb
from .. import migrate as migrations
from . import main
from .common import operator_errors, say, using_local_cluster

BACKUP_MAX_AGE_HOURS = 26  # a daily backup plus slack, as the backup-age alert


@dataclass
class Line:
    part: str
    ok: bool | None  # None: off or unknown, not an error
    text: str


def _database() -> tuple[Line, str | None]:
    if not using_local_cluster():
        url = os.environ["DATABASE_URL"]
        try:
            psycopg.connect(url, connect_timeout=3).close()
            return Line("database", True, "DATABASE_URL reachable"), url
        except psycopg.OperationalError as exc:
            return Line("database", False, f"DATABASE_URL unreachable: {str(exc).strip().splitlines()[0]}"), None
    cluster = localdb.Cluster()
    if not cluster.initialised():
        return Line("database", False, "local cluster not created (referral-service db start)"), None
    if not cluster.running():
        return Line("database", False, f"local cluster stopped (port {cluster.port}; data in {cluster.home})"), None
    return Line("database", True, f"local cluster running on 127.0.0.1:{cluster.port} (data in {cluster.home})"), \
        cluster.url()


def _gateway() -> list[Line]:
    port = config.int_setting("PGRST_SERVER_PORT", 3000)
    admin = config.int_setting("PGRST_ADMIN_SERVER_PORT", port + 1)
    lines = [_probe("gateway", f"http://127.0.0.1:{port}/live", f"API on port {port}")]
    ready = _probe("gateway admin", f"http://127.0.0.1:{admin}/ready", f"/ready on port {admin}")
    lines.append(ready)
    return lines


def _probe(part: str, url: str, what: str) -> Line:
    """One GET with the standard library: httpx is a test dependency, absent where only the service is installed."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            status, raw = reply.status, reply.read(400)
    except urllib.error.HTTPError as err:  # a non-2xx answer: still an answer
        status, raw = err.code, err.read(400)
    except (OSError, ValueError):
        return Line(part, False, f"{what}: not answering")
    body = " ".join(raw.decode("utf-8", "replace").split())[:120]  # one line per part
    return Line(part, status == 200, f"{what}: {status} {body}")


def _pgbouncer() -> Line:
    from ..pgbouncer import DEFAULT_PORT, Bouncer

    bouncer = Bouncer()
    try:
        pid = int(bouncer.pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return Line("pgbouncer", None, "not running (serve --pgbouncer starts it)")
    return Line("pgbouncer", localdb.port_in_use(DEFAULT_PORT), f"running (pid {pid}) on port {DEFAULT_PORT}")


def _migrations(url: str) -> Line:
    try:
        state = migrations.status(url)
    except migrations.MigrationError as exc:
        return Line("migrations", False, str(exc))
    text = f"{len(state.applied)} applied, {len(state.pending)} pending"
    if state.changed:
        text += f", changed: {', '.join(state.changed)}"
    if state.unknown:
        text += f", unknown to this code: {', '.join(state.unknown)}"
    return Line("migrations", state.ok, text)


def _database_facts(url: str) -> list[Line]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [_backup(conn), _wal(conn), _cron(conn)]


def _backup(conn: psycopg.Connection) -> Line:
    if not conn.execute("select to_regclass('internal.backup_runs') is not null").fetchone()[0]:
        return Line("backup", None, "no backup table (migrate first)")
    row = conn.execute("select max(finished_at), extract(epoch from now() - max(finished_at)) / 3600"
                       " from internal.backup_runs where ok").fetchone()
    failed = conn.execute("select ok, error from internal.backup_runs order by id desc limit 1").fetchone()
    if row[0] is None:
        return Line("backup", False, "no successful backup yet (referral-service backup)")
    text = f"newest good backup {row[0]:%Y-%m-%d %H:%M:%S%z} ({row[1]:.1f} h ago)"
    if failed and not failed[0]:
        return Line("backup", False, f"{text}; the latest run failed: {failed[1]}")
    return Line("backup", row[1] <= BACKUP_MAX_AGE_HOURS, text)


def _wal(conn: psycopg.Connection) -> Line:
    mode = conn.execute("select current_setting('archive_mode')").fetchone()[0]
    if mode == "off":
        return Line("wal archive", None, "archiving off (point-in-time recovery not enabled)")
    wal, at, failures, failed_at = conn.execute(
        "select last_archived_wal, last_archived_time, failed_count, last_failed_time from pg_stat_archiver"
    ).fetchone()
    if wal is None:
        return Line("wal archive", failures == 0, f"on, nothing archived yet ({failures} failures)")
    newer_failure = failed_at is not None and failed_at > at
    return Line("wal archive", not newer_failure, f"last archived {wal} at {at:%Y-%m-%d %H:%M:%S%z}"
                + (f"; failing since {failed_at:%Y-%m-%d %H:%M:%S%z}" if newer_failure else ""))


def _cron(conn: psycopg.Connection) -> Line:
    if not conn.execute("select to_regclass('cron.job') is not null").fetchone()[0]:
        return Line("cron", None, "pg_cron not installed in this database")
    failing = [name for (name,) in conn.execute(
        "select j.jobname from cron.job j cross join lateral (select d.status from cron.job_run_details d"
        " where d.jobid = j.jobid order by d.start_time desc nulls last limit 1) last"
        " where last.status = 'failed' order by 1")]
    jobs = conn.execute("select count(*) from cron.job").fetchone()[0]
    if failing:
        return Line("cron", False, f"{len(failing)} of {jobs} jobs failed their latest run: {', '.join(failing)}")
    return Line("cron", True, f"{jobs} jobs, none failing")


@main.command("status")
@click.option("--no-gateway", is_flag=True, help="Do not probe the gateway (when it is not meant to run).")
@operator_errors
def status(no_gateway: bool) -> None:
    """The local stack at a glance: database, gateway, PgBouncer, migrations, backups, WAL, cron."""
    database, url = _database()
    lines = [database]
    if not no_gateway:
        lines += _gateway()
    lines.append(_pgbouncer())
    if url:
        lines.append(_migrations(url))
        lines += _database_facts(url)
    marks = {True: "ok", False: "FAIL", None: "off"}
    for line in lines:
        say(f"{marks[line.ok]:4}  {line.part:13} {line.text}")
    if any(line.ok is False for line in lines):
        sys.exit(1)
