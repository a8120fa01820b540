"""`referral-service migrate` (and `migrate status`, `migrate new`) and `setup`."""

from __future__ import annotations

import sys

import click

from .. import config, provision
from .. import migrate as migrations
from .. import secrets as installed_secrets
from . import main
from .common import ensure_database, operator_errors, say


def apply_all(url: str, force: bool = False) -> list[str]:
    """Migrations, then the secrets the database does not have yet (a mismatch is refused before anything)."""
    secrets = config.load_secrets()
    installed_secrets.check(url, secrets)
    applied = migrations.migrate(url, log=lambda line: say(f"  {line}"), force=force)
    for what in provision.provision(url, secrets):
        say(f"  installed {what}")
    return applied


@main.group(invoke_without_command=True)
@click.option("--force", is_flag=True, help="Apply even when the database has migrations this code does not know.")
@click.pass_context
@operator_errors
def migrate(ctx: click.Context, force: bool) -> None:
    """Apply pending migrations; install the secrets once (never replaces installed ones)."""
    if ctx.invoked_subcommand is not None:
        return
    applied = apply_all(ensure_database(), force)
    say(f"migrations: {len(applied)} applied, database up to date")


@migrate.command("status")
@operator_errors
def migrate_status() -> None:
    """List applied, pending, changed and unknown migrations; exit 1 unless the database is up to date."""
    state = migrations.status(ensure_database())
    for label, names in (("applied", state.applied), ("pending", state.pending),
                         ("changed", state.changed), ("unknown", state.unknown)):
        for name in names:
            say(f"{label:8} {name}")
    say(f"{len(state.applied)} applied, {len(state.pending)} pending, {len(state.changed)} changed "
        f"(checksum differs), {len(state.unknown)} unknown to this code")
    if not state.ok:
        sys.exit(1)


@migrate.command("new")
@click.argument("name")
@operator_errors
def migrate_new(name: str) -> None:
    """Create the next numbered migration file, NNN_NAME.sql."""
    say(f"created {migrations.new(name)}")


@main.command()
@operator_errors
def setup() -> None:
    """Everything `make run` needs: cluster, migrations, secrets, demo data on first run."""
    url = ensure_database()
    applied = apply_all(url)
    say(f"database ready ({len(applied)} migrations applied)")
    secrets = config.load_secrets()
    if provision.load_demo_data(url, secrets):
        say(f"demo data loaded; admin account: {provision.DEMO_ADMIN_EMAIL} / {secrets.demo_admin_password}")
