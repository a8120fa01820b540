"""`referral-service db ...`: the project's local PostgreSQL cluster."""

from __future__ import annotations

import os
import sys

import click

from .. import config, localdb
from . import main
from .common import ensure_database, operator_errors, say, using_local_cluster


@main.group()
def db() -> None:
    """The project's local PostgreSQL cluster (ignored when DATABASE_URL is set)."""


@db.command("start")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Start (and from now on keep) the cluster on this port; it must be stopped to move it.")
@operator_errors
def db_start(port: int | None) -> None:
    """Create (first time) and start the local cluster; its port is stored with it."""
    cluster = localdb.Cluster(port=port) if port else localdb.Cluster()
    cluster.start(log=say)
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
        from .. import replicas
        from .replicas import describe

        for line in describe(replicas.status(cluster)):  # streaming replicas and their lag (db replica add)
            say(f"  replica {line}")
    else:
        say(f"not running (port {cluster.port})" if cluster.initialised()
            else "not created yet (run: referral-service db start)")
        sys.exit(3)


@db.command("url")
@operator_errors
def db_url() -> None:
    """Print the superuser URL of the app database."""
    print(localdb.admin_url())


@db.command("psql", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@operator_errors
def db_psql(args: tuple[str, ...]) -> None:
    """Open psql on the app database; every argument goes to psql unchanged (-d, -c, -f, ...).

    The connection is handed over in PG* environment variables and the password in a 0600 password file
    (PGPASSFILE), never on psql's command line, where `ps` would show it to every user of the machine."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(ensure_database())
    password = parts.pop("password", None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
             "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "connect_timeout": "PGCONNECT_TIMEOUT"}
    env.update({names[k]: str(v) for k, v in parts.items() if k in names})
    if password:
        env["PGPASSFILE"] = str(_password_file(parts, password))
    psql = localdb.pg_bin("psql")
    os.execve(psql, [psql, *args], env)


def _password_file(parts: dict, password: str):
    """A .pgpass line matching any host/port/database for this user, in a 0600 file of the data folder."""
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    folder = config.DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".pgpass"
    tmp = folder / ".pgpass.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"*:*:*:{esc(str(parts.get('user', 'postgres')))}:{esc(password)}\n")
    os.replace(tmp, path)
    return path


@db.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_errors
def db_reset(yes: bool) -> None:
    """Drop the app database of the local cluster, migrate it again and load the demo data (developers)."""
    from .. import provision
    from ..errors import OperatorError
    from .migrations import apply_all

    if not using_local_cluster():
        raise OperatorError("db reset works on the local cluster only; unset DATABASE_URL")
    url = ensure_database()
    if not yes:
        click.confirm(f"Drop database {config.DB_NAME} of the local cluster and everything in it?", abort=True)
    import psycopg

    cluster = localdb.Cluster()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{config.DB_NAME}" with (force)')
        conn.execute(f'create database "{config.DB_NAME}"')
    applied = apply_all(url)
    secrets = config.load_secrets()
    provision.load_demo_data(url, secrets)
    say(f"database {config.DB_NAME} reset: {len(applied)} migrations applied, demo data loaded "
        f"(admin {provision.DEMO_ADMIN_EMAIL})")
