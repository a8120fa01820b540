"""Operator commands. Each one parses, calls one domain function and prints through `say`/`fail`."""

from __future__ import annotations

import os
import sys
from functools import wraps

import click
from rich.console import Console

from . import config, localdb, provision
from .errors import OperatorError
from .migrate import migrate as run_migrations

out = Console()
err = Console(stderr=True)


def say(message: str) -> None:
    out.print(message, highlight=False, soft_wrap=True)


def operator_errors(fn):
    """Turn an OperatorError into one red line and exit status 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OperatorError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


def _using_local_cluster() -> bool:
    return not os.environ.get("DATABASE_URL")


def _ensure_database() -> str:
    """Start the local cluster when it is the target; return the admin URL either way."""
    if _using_local_cluster():
        localdb.Cluster().start()
    return localdb.admin_url()


@click.group()
def main() -> None:
    """Churnistic referral service: local database, migrations, gateway, users, backups."""


# -- db ----------------------------------------------------------------------------------------


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
    url = _ensure_database()
    psql = localdb.pg_bin("psql")
    os.execv(psql, [psql, url, *args])


# -- migrations and setup ------------------------------------------------------------------------


@main.command()
@operator_errors
def migrate() -> None:
    """Apply pending migrations, then install the secrets (authenticator password, JWT key)."""
    url = _ensure_database()
    applied = run_migrations(url, log=lambda line: say(f"  {line}"))
    provision.provision(url, config.load_secrets())
    say(f"migrations: {len(applied)} applied, database up to date")


@main.command()
@operator_errors
def setup() -> None:
    """Everything `make run` needs: cluster, migrations, secrets, demo data on first run."""
    url = _ensure_database()
    applied = run_migrations(url, log=lambda line: say(f"  {line}"))
    secrets = config.load_secrets()
    provision.provision(url, secrets)
    say(f"database ready ({len(applied)} migrations applied)")
    if provision.load_demo_data(url, secrets):
        say(f"demo data loaded; admin account: {provision.DEMO_ADMIN_EMAIL} / {secrets.demo_admin_password}")


# -- users -----------------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Accounts."""


@user.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@operator_errors
def user_create(email: str, role: str, password_stdin: bool) -> None:
    """Create an account (the only way, with the API's create_user, to make an admin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = provision.create_user(_ensure_database(), email, password, role)
    except Exception as exc:  # a database refusal (weak password, taken email) is the operator's to fix
        import psycopg

        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            raise OperatorError(exc.diag.message_primary) from exc
        raise
    say(f"created {role} {email} ({user_id})")
if __name__ == "__main__":
    main()
