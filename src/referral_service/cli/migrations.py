"""`referral-service migrate` and `setup`."""

from __future__ import annotations

from .. import config, provision
from ..migrate import migrate as run_migrations
from . import main
from .common import ensure_database, operator_errors, say


@main.command()
@operator_errors
def migrate() -> None:
    """Apply pending migrations, then install the secrets (authenticator password, JWT key)."""
    url = ensure_database()
    applied = run_migrations(url, log=lambda line: say(f"  {line}"))
    provision.provision(url, config.load_secrets())
    say(f"migrations: {len(applied)} applied, database up to date")


@main.command()
@operator_errors
def setup() -> None:
    """Everything `make run` needs: cluster, migrations, secrets, demo data on first run."""
    url = ensure_database()
    applied = run_migrations(url, log=lambda line: say(f"  {line}"))
    secrets = config.load_secrets()
    provision.provision(url, secrets)
    say(f"database ready ({len(applied)} migrations applied)")
    if provision.load_demo_data(url, secrets):
        say(f"demo data loaded; admin account: {provision.DEMO_ADMIN_EMAIL} / {secrets.demo_admin_password}")
