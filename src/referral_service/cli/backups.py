"""`referral-service backup` and `restore`."""

from __future__ import annotations

import os

import click

from .. import config, provision
from ..errors import OperatorError
from . import main
from .common import ensure_database, err, operator_errors, say


def _backup_dir() -> str:
    return os.environ.get("REFERRAL_BACKUP_DIR") or str(config.DATA_DIR / "backups")


@main.command()
@click.option("--dir", "out_dir", default=_backup_dir, show_default="REFERRAL_BACKUP_DIR or .data/backups")
@click.option("--keep", type=int, help="Keep only the newest N dumps.")
@click.option("--verify", is_flag=True, help="Restore into a scratch database and compare every table.")
@operator_errors
def backup(out_dir: str, keep: int | None, verify: bool) -> None:
    """Write a compressed custom-format dump with a timestamped name (0600 files in a 0700 folder).

    The secrets' rows (the JWT signing key) are never in a dump: `restore` installs them from the environment.
    """
    from rich.progress import Progress

    from .. import backup as backups

    url = ensure_database()
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("dumping", total=None)

        def progress(done: int, total: int, table: str) -> None:
            bar.update(task, completed=done, total=total, description=f"dumping {table}")

        try:
            dump = backups.backup(url, out_dir, keep=keep, progress=progress, verify=verify,
                                  warn=lambda message: err.print(f"[yellow]warning:[/yellow] {message}",
                                                                 highlight=False, soft_wrap=True))
        except OperatorError as exc:
            provision.record_backup(url, file="", size=None, verified=False, ok=False, error=str(exc))
            raise
    provision.record_backup(url, file=dump.name, size=dump.stat().st_size, verified=verify, ok=True)
    say(f"backup written: {dump} ({dump.stat().st_size // 1024} KiB){', verified' if verify else ''}")


@main.command()
@click.argument("dump_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", help="Database to create and restore into (default: the app database).")
@operator_errors
def restore(dump_file: str, target: str | None) -> None:
    """Restore a dump into a new database (refuses one that exists), then install the environment's secrets."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from .. import backup as backups

    admin = conninfo_to_dict(ensure_database())
    if target:
        admin["dbname"] = target
    result = backups.restore(dump_file, make_conninfo(**admin), secrets=config.load_secrets())
    say(f"restored into database {result.database}"
        + (" (secrets installed from the environment)" if result.secrets_installed else ""))
    for skipped in result.skipped:
        say(f"  skipped: {skipped}")
