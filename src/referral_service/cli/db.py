"""`referral-service db ...`: the project's local PostgreSQL cluster."""

from __future__ import annotations

import os
import sys

import click

from .. import localdb
from . import main
from .common import ensure_database, operator_errors, say


@main.group()
def db() -> None:
    """The project's local PostgreSQL cluster (ignored when DATABASE_URL is set)."""


@db.command("start")
@operator_errors
def db_start() -> None:
    """Create (first time) and start the local cluster."""
    cluster = localdb.Cluster()
    cluster.start()
    say(f"PostgreSQL running on 127.0.0.1:{cluster.port} (data in {cluster.home})")


@db.command("stop")
@operator_errors
def db_stop() -> None:
    """Stop the local cluster."""
    localdb.Cluster().stop()
    say("PostgreSQL stopped")


@db.command("status")
@operator_errors
def db_status() -> None:
    """Say whether the local cluster runs; exit 3 when it does not."""
    cluster = localdb.Cluster()
    if cluster.running():
        say(f"running on 127.0.0.1:{cluster.port} (data in {cluster.home})")
    else:
        say("not running" if cluster.initialised() else "not created yet (run: referral-service db start)")
        sys.exit(3)


@db.command("url")
@operator_errors
def db_url() -> None:
    """Print the superuser URL of the app database."""
    print(localdb.admin_url())


@db.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@operator_errors
def db_psql(args: tuple[str, ...]) -> None:
    """Open psql on the app database (extra arguments go to psql)."""
    url = ensure_database()
    psql = localdb.pg_bin("psql")
    os.execv(psql, [psql, url, *args])
