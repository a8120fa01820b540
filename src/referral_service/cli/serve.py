"""`referral-service serve`: the HTTP gateway."""

from __future__ import annotations

import os

import click

from .. import config
from ..errors import OperatorError
from . import main
from .common import authenticator_url, ensure_database, operator_errors, say


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
    from .. import service
    from ..gateway.settings import SettingsError, load_settings

    env = os.environ
    if host:
        env["PGRST_SERVER_HOST"] = host
    if port:
        env["PGRST_SERVER_PORT"] = str(port)
    local = not env.get("PGRST_DB_URI")
    if local:
        ensure_database()
        env["PGRST_DB_URI"] = authenticator_url()
    if not env.get("PGRST_JWT_SECRET"):  # the installed keys (current + still-valid previous, with kid) as a JWKS
        from .. import localdb, secrets as installed_secrets

        admin = localdb.admin_url() if (local or env.get("DATABASE_URL")) else None
        env["PGRST_JWT_SECRET"] = installed_secrets.gateway_jwt_secret(config.load_secrets(), admin)
    bouncer = None
    if pgbouncer:
        from ..pgbouncer import Bouncer

        bouncer = Bouncer(port=pgbouncer_port)
        bouncer.start({"authenticator": config.load_secrets().authenticator_password})
        # LISTEN needs a session of its own, which transaction pooling cannot give: keep it direct
        env.setdefault("PGRST_DB_LISTEN_URI", env["PGRST_DB_URI"])
        env["PGRST_DB_URI"] = authenticator_url(pgbouncer_port)
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
