"""Operator commands. Each one parses, calls one domain function and prints through `say`/`fail`."""

from __future__ import annotations

import os
import sys
from functools import wraps

import click
import psycopg
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
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0]
            err.print(f"[red]error:[/red] cannot reach the database: {first}", highlight=False, soft_wrap=True)
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
    except psycopg.DatabaseError as exc:  # a refusal (weak password, taken email) is the operator's to fix
        raise OperatorError(exc.diag.message_primary or str(exc)) from exc
    say(f"created {role} {email} ({user_id})")
# -- gateway ---------------------------------------------------------------------------------------


def _authenticator_url(port: int | None = None) -> str:
    """The gateway's login: the authenticator on the same server and database as the admin URL."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(localdb.admin_url())
    parts.update(user="authenticator", password=config.load_secrets().authenticator_password)
    if port is not None:
        parts.update(host="127.0.0.1", port=str(port))
    return make_conninfo(**parts)


@main.command()
@click.option("--host", help="Listen address (PGRST_SERVER_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (PGRST_SERVER_PORT, default 3000).")
@click.option("--workers", type=int, default=lambda: int(os.environ.get("REFERRAL_WORKERS", "1")),
              show_default="REFERRAL_WORKERS or 1", help="Worker processes.")
@click.option("--pgbouncer", is_flag=True, help="Start a local PgBouncer and send queries through it.")
@click.option("--pgbouncer-port", type=int, default=6432, show_default=True)
@operator_errors
def serve(host: str | None, port: int | None, workers: int, pgbouncer: bool, pgbouncer_port: int) -> None:
    """Run the HTTP gateway (PostgREST's API dialect) in the foreground."""
    from . import service
    from .gateway.settings import SettingsError, load_settings

    env = os.environ
    if host:
        env["PGRST_SERVER_HOST"] = host
    if port:
        env["PGRST_SERVER_PORT"] = str(port)
    if not env.get("PGRST_DB_URI"):
        _ensure_database()
        env["PGRST_DB_URI"] = _authenticator_url()
    env.setdefault("PGRST_JWT_SECRET", config.load_secrets().jwt_secret)
    bouncer = None
    if pgbouncer:
        from .pgbouncer import Bouncer

        bouncer = Bouncer(port=pgbouncer_port)
        bouncer.start({"authenticator": config.load_secrets().authenticator_password})
        # LISTEN needs a session of its own, which transaction pooling cannot give: keep it direct
        env.setdefault("PGRST_DB_LISTEN_URI", env["PGRST_DB_URI"])
        env["PGRST_DB_URI"] = _authenticator_url(pgbouncer_port)
        env["PGRST_DB_PREPARED_STATEMENTS"] = "false"
        say(f"PgBouncer (transaction pooling) on 127.0.0.1:{pgbouncer_port}")
    try:
        settings = load_settings()
        service.load_ops_settings()
    except SettingsError as exc:
        raise OperatorError(str(exc)) from None
    say(f"gateway on http://{settings.server_host}:{settings.server_port} ({workers} worker(s))")
    try:
        service.serve(settings, workers)
    finally:
        if bouncer is not None:
            bouncer.stop()


# -- backups -----------------------------------------------------------------------------------------


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

    from . import backup as backups

    url = _ensure_database()
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

    from . import backup as backups

    admin = conninfo_to_dict(_ensure_database())
    if target:
        admin["dbname"] = target
    result = backups.restore(dump_file, make_conninfo(**admin), secrets=config.load_secrets())
    say(f"restored into database {result.database}"
        + (" (secrets installed from the environment)" if result.secrets_installed else ""))
    for skipped in result.skipped:
        say(f"  skipped: {skipped}")


# -- data for benchmarks -------------------------------------------------------------------------------


@main.command("seed")
@click.option("--offers", type=click.IntRange(min=0), default=10_000, show_default=True, help="Offers to add.")
@click.option("--events", type=click.IntRange(min=0), default=100_000, show_default=True,
              help="offer_view events to add (over all offers in the database).")
@operator_errors
def seed_command(offers: int, events: int) -> None:
    """Add generated offers and offer_view events (for benchmarks and demos)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from .seed import seed

    url = _ensure_database()
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("seeding rows", total=offers + events)
        stats = seed(url, offers, events, progress=lambda done, total: bar.update(task, completed=done))
    say(f"added {stats['offers']} offers in {stats['offers_seconds']}s and "
        f"{stats['events']} events in {stats['events_seconds']}s ({stats['total_seconds']}s in all)")


if __name__ == "__main__":
    main()
