"""`referral-service serve`: the HTTP gateway."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .. import config
from ..errors import OperatorError
from . import main
from .common import authenticator_url, ensure_database, operator_errors


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A config file in PostgREST's syntax (PGRST_CONFIG); the environment overrides its keys.")
@click.option("--dump-config", is_flag=True, help="Print the effective settings (secrets masked) and exit.")
@click.option("--host", help="Listen address (PGRST_SERVER_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (PGRST_SERVER_PORT, default 3000).")
@click.option("--workers", type=int, default=lambda: int(os.environ.get("REFERRAL_WORKERS", "1")),
              show_default="REFERRAL_WORKERS or 1", help="Worker processes.")
@click.option("--pgbouncer", is_flag=True, help="Start a local PgBouncer and send queries through it.")
@click.option("--pgbouncer-port", type=int, default=6432, show_default=True)
@operator_errors
def serve(config_file: str | None, dump_config: bool, host: str | None, port: int | None, workers: int,
          pgbouncer: bool, pgbouncer_port: int) -> None:
    """Run the HTTP gateway (PostgREST's API dialect) in the foreground.

    Settings: the config file, then PGRST_* variables (PGRST_<NAME>_FILE reads one from a file), then the
    options here. Without a database URI or JWT secret from either, the local cluster and its secrets."""
    from .. import logging as service_logging, service
    from ..gateway.settings import GatewaySettings, SettingsError, dump, load_settings
    from ..gateway.sources import SourceError, gather

    env = os.environ
    if config_file:
        env["PGRST_CONFIG"] = str(Path(config_file).resolve())  # the workers and the service settings read it
    if host:
        env["PGRST_SERVER_HOST"] = host
    if port:
        env["PGRST_SERVER_PORT"] = str(port)
    try:
        provided = gather(GatewaySettings, env, None).values
    except SourceError as exc:
        raise OperatorError(str(exc)) from None
    if "db_uri" not in provided:
        if not dump_config:
            ensure_database()
        env["PGRST_DB_URI"] = authenticator_url()
    if "jwt_secret" not in provided:  # the installed keys (current + still-valid previous, with kid) as a JWKS
        from .. import localdb, secrets as installed_secrets

        admin = localdb.admin_url() if ("db_uri" not in provided or env.get("DATABASE_URL")) else None
        env["PGRST_JWT_SECRET"] = installed_secrets.gateway_jwt_secret(config.load_secrets(), admin)

    def settings_now() -> GatewaySettings:
        try:
            found = load_settings()
            service.load_ops_settings()
        except SettingsError as exc:
            raise OperatorError(str(exc)) from None
        return found

    settings = settings_now()  # refuse a bad setting before anything starts
    if dump_config:
        for note in settings.notes:
            click.echo(f"warning: {note}", err=True)
        click.echo(dump(settings) + dump(service.load_ops_settings(), "referral-"), nl=False)
        return
    service_logging.configure(settings.log_level)
    bouncer = None
    if pgbouncer:
        from ..pgbouncer import Bouncer

        bouncer = Bouncer(port=pgbouncer_port)
        bouncer.start({"authenticator": config.load_secrets().authenticator_password})
        # LISTEN needs a session of its own, which transaction pooling cannot give: keep it direct
        env.setdefault("PGRST_DB_LISTEN_URI", settings.db_listen_uri or settings.db_uri)
        env["PGRST_DB_URI"] = authenticator_url(pgbouncer_port)
        env["PGRST_DB_PREPARED_STATEMENTS"] = "false"
        service_logging.get("referral_service.cli").info("pgbouncer started", mode="transaction",
                                                         address=f"127.0.0.1:{pgbouncer_port}")
        settings = settings_now()
    try:
        service.serve(settings, workers)
    finally:
        if bouncer is not None:
            bouncer.stop()
