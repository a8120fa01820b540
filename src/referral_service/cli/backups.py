"""`referral-service backup`, `restore` and `pitr`: logical dumps and point-in-time recovery (pgBackRest)."""

from __future__ import annotations

import os

import click

from .. import config, provision
from ..errors import OperatorError
from . import main
from .common import ensure_database, err, operator_errors, say, using_local_cluster


def _backup_dir() -> str:
    return os.environ.get("REFERRAL_BACKUP_DIR") or str(config.DATA_DIR / "backups")


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


def _bar(verb: str):
    """A rich progress bar on stderr and the callback that moves it: (done, total, what)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=True)
    task = bar.add_task(verb, total=None)

    def progress(done: int, total: int, what: str) -> None:
        bar.update(task, completed=done, total=total, description=f"{verb} {what[:50]}".rstrip())

    return bar, progress


@main.command()
@click.option("--dir", "out_dir", default=_backup_dir, show_default="REFERRAL_BACKUP_DIR or .data/backups",
              help="Folder of the logical dumps.")
@click.option("--keep", type=click.IntRange(min=1), help="Keep only the newest N dumps (N >= 1).")
@click.option("--verify", is_flag=True, help="Restore into a scratch database and compare every table.")
@click.option("--full", "kind", flag_value="full", help="A full pgBackRest backup (point-in-time recovery).")
@click.option("--diff", "kind", flag_value="diff", help="A pgBackRest backup of what changed since the last full.")
@click.option("--incr", "kind", flag_value="incr", help="A pgBackRest backup of what changed since the last backup.")
@operator_errors
def backup(out_dir: str, keep: int | None, verify: bool, kind: str | None) -> None:
    """A logical dump (default), or with --full/--diff/--incr a pgBackRest backup of the local cluster.

    Dumps are compressed custom-format files with a timestamped name (0600 files in a 0700 folder); the secrets'
    rows (the JWT signing key) are never in a dump: `restore` installs them from the environment.
    """
    if kind and (verify or keep):
        raise click.UsageError("--verify and --keep are for logical dumps; pgBackRest keeps "
                               "REFERRAL_PGBACKREST_RETENTION_FULL full backups (default 2)")
    url = ensure_database()
    if kind:
        _pgbackrest_backup(url, kind)
        return
    from .. import backup as backups

    bar, progress = _bar("dumping")
    try:
        with bar:
            dump = backups.backup(url, out_dir, keep=keep, progress=progress, verify=verify, warn=_warn)
    except OperatorError as exc:
        provision.record_backup(url, file="", size=None, verified=False, ok=False, error=str(exc))
        raise
    provision.record_backup(url, file=dump.name, size=dump.stat().st_size, verified=verify, ok=True)
    say(f"backup written: {dump} ({dump.stat().st_size // 1024} KiB){', verified' if verify else ''}")


def _pgbackrest_backup(url: str, kind: str) -> None:
    from ..backup import pgbackrest

    pitr = pgbackrest.for_local_cluster()
    try:
        done = pitr.backup(kind)
    except OperatorError as exc:
        provision.record_backup(url, file="", size=None, verified=False, ok=False, error=str(exc), kind=kind)
        raise
    provision.record_backup(url, file=done.label, size=done.size_bytes, verified=False, ok=True, kind=done.kind)
    say(f"{done.kind} backup {done.label} in the pgBackRest repository ({done.size_bytes // 1024} KiB stored)")


@main.command()
@click.argument("dump_file", required=False, type=click.Path(dir_okay=True))
@click.option("--target", help="Restore the dump into this new database, beside the live one.")
@click.option("--replace", is_flag=True,
              help="Restore in place of the app database; the old one is kept as <name>_before_restore_<time>.")
@click.option("--to", "to_time", metavar="TIME",
              help='Point-in-time recovery of the local cluster to TIME, e.g. "2026-12-01 10:00:00+00".')
@click.option("--yes", is_flag=True, help="Do not ask before replacing.")
@operator_errors
def restore(dump_file: str | None, target: str | None, replace: bool, to_time: str | None, yes: bool) -> None:
    """Restore a dump (--target NAME or --replace), or the whole local cluster to a moment (--to TIME).

    Either way the environment's secrets are installed and the app's pg_cron jobs run in the restored database.
    """
    if to_time:
        if dump_file or target or replace:
            raise click.UsageError("--to restores the whole cluster from pgBackRest: give no dump, --target or "
                                   "--replace with it")
        _restore_to(to_time, yes)
        return
    if not dump_file:
        raise click.UsageError("give a dump to restore (and --target NAME or --replace), or --to TIME")
    if bool(target) == replace:
        raise click.UsageError("say where to restore: --target NEW_NAME (a copy beside the live database) or "
                               "--replace (in place of it; the old one is kept under a dated name)")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from .. import backup as backups

    backups.inspect_dump(dump_file)  # a file that is not a dump: one line, before anything else happens
    live = ensure_database()
    live_name = conninfo_to_dict(live).get("dbname", config.DB_NAME)
    secrets = config.load_secrets()
    bar, progress = _bar("restoring")
    if replace:
        if not yes:
            click.confirm(f"Replace database {live_name} with {dump_file}? Connections to it are closed for the "
                          f"swap; the old one is kept as {live_name}_before_restore_<time>", abort=True)
        with bar:
            result = backups.replace(dump_file, live, secrets=secrets, progress=progress)
    else:
        with bar:
            result = backups.restore(dump_file, make_conninfo(live, dbname=target), secrets=secrets,
                                     progress=progress, schedule_jobs=True)
    say(f"restored into database {result.database}"
        + (" (secrets installed from the environment)" if result.secrets_installed else ""))
    if result.kept_as:
        say(f"  the previous database is kept as {result.kept_as} (drop it once you are satisfied)")
    if result.jobs:
        say(f"  pg_cron jobs for it: {', '.join(result.jobs)}")
    if result.skipped:  # pg_cron's own objects live in the cron database only
        say(f"  left out (pg_cron's part, kept in the cron database): {'; '.join(result.skipped)}")
    if result.restart_needed:
        _restart_for_cron()


def _restart_for_cron() -> None:
    """pg_cron's scheduler left with the old database's sessions and comes back only with a server start."""
    if not using_local_cluster():
        _warn("restart PostgreSQL now: pg_cron's scheduler stopped when the old database's sessions were ended, "
              "and only a server start brings it back (the jobs are in place)")
        return
    from .. import localdb

    say("  restarting PostgreSQL so pg_cron's scheduler runs the jobs in the restored database")
    localdb.Cluster().stop()
    ensure_database()


def _restore_to(text: str, yes: bool) -> None:
    from ..backup import pgbackrest

    when = pgbackrest.parse_time(text)
    pitr = pgbackrest.for_local_cluster()
    if not yes:
        click.confirm(f"Replace the whole local cluster with its state at {when.isoformat()}? PostgreSQL stops "
                      f"meanwhile; the current data folder is kept beside it", abort=True)
    kept = pitr.restore_to(when, say)
    say(f"the cluster is back at {when.isoformat()} and serving; the previous data folder is kept in {kept}")
    say("  take a new full backup soon: referral-service backup --full")


@main.group()
def pitr() -> None:
    """Point-in-time recovery of the local cluster with pgBackRest (WAL archiving)."""


@pitr.command("enable")
@operator_errors
def pitr_enable() -> None:
    """Configure WAL archiving and the repository, restart PostgreSQL, take the first full backup."""
    from ..backup import pgbackrest

    pitr_ = pgbackrest.for_local_cluster()
    pitr_.enable()
    cluster = pitr_.cluster
    if cluster.running():
        say("restarting PostgreSQL to turn WAL archiving on")
        cluster.stop()
    url = ensure_database()
    pitr_.create_stanza()
    say(f"WAL archiving into {pitr_.repo()} (stanza {pgbackrest.STANZA})")
    _pgbackrest_backup(url, "full")


@pitr.command("status")
@operator_errors
def pitr_status() -> None:
    """The repository's backups and the range of archived WAL."""
    from ..backup import pgbackrest

    info = pgbackrest.for_local_cluster().info()
    say(f"repository status: {info.status}; archived WAL {info.wal_min or '-'} .. {info.wal_max or '-'}")
    for b in info.backups:
        say(f"  {b.label}  {b.kind:<4}  {b.stopped_at.isoformat()}  {b.size_bytes // 1024} KiB")
    if info.backups:
        say(f"restorable from {info.backups[0].stopped_at.isoformat()} until the newest archived WAL")
