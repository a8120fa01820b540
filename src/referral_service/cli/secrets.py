"""`referral-service secrets ...`: see and rotate the secrets installed in the database."""

from __future__ import annotations

import sys

import click

from .. import config
from .. import secrets as installed
from ..errors import OperatorError
from . import main
from .common import ensure_database, operator_errors, say


@main.group()
def secrets() -> None:
    """The JWT signing keys and the authenticator password installed in the database."""


@secrets.command("status")
@operator_errors
def secrets_status() -> None:
    """Key ids and where the environment's secrets come from (never the values); exit 1 on a mismatch."""
    url = ensure_database()
    state = installed.describe(url)
    local = config.load_secrets()
    say(f"JWT signing key: {state.current or 'none installed'}"
        + (f" (environment: {installed.kid(local.jwt_secret)} from {local.source('jwt_secret')})"))
    if state.staged:
        say(f"JWT staged key: {state.staged} (accepted by gateways started since; not signing yet)")
    for key_id, until in sorted(state.previous.items(), key=lambda item: item[1] or ""):
        say(f"JWT previous key: {key_id} (accepted until {until})")
    say(f"authenticator password: {'set' if state.authenticator_verifier else 'not set'} "
        f"(environment: from {local.source('authenticator_password')})")
    try:
        installed.check(url, local)
    except installed.SecretsMismatch as exc:
        say(f"mismatch: {exc}")
        sys.exit(1)


@secrets.group("rotate")
def rotate() -> None:
    """Replace an installed secret on purpose."""


def _read_stdin(what: str) -> str:
    value = sys.stdin.readline().rstrip("\n")
    if not value:
        raise OperatorError(f"no {what} on standard input")
    return value


@rotate.command("jwt")
@click.option("--grace", default="24h", show_default=True,
              help="How long the previous key keeps verifying (tokens it signed live 24h).")
@click.option("--stage", is_flag=True,
              help="Only add the new key for gateways to accept (after their restart); a later "
                   "`secrets rotate jwt` makes it the signing key.")
@click.option("--key-stdin", is_flag=True, help="Read the new key from standard input instead of generating one.")
@operator_errors
def rotate_jwt(grace: str, stage: bool, key_stdin: bool) -> None:
    """Make a new JWT signing key current; the previous one verifies for the grace period."""
    url = ensure_database()
    local = config.load_secrets()
    key = _read_stdin("key") if key_stdin else None
    state = installed.describe(url)
    generated_for_env = key is None and not (state.staged and not stage) and local.from_environment("jwt_secret")
    if generated_for_env:
        raise OperatorError(
            f"the JWT key comes from {local.source('jwt_secret')}, which this command cannot change: put a new "
            f"key into your secret store, pass it with --key-stdin, then set {local.source('jwt_secret')} to it")
    done = installed.rotate_jwt(url, key, installed.parse_duration(grace), stage)
    if done.staged:
        say(f"staged JWT key {done.kid}: restart the gateways (they will accept it), then run "
            f"`referral-service secrets rotate jwt` to sign with it")
        return
    say(f"JWT signing key is now {done.kid}; {done.previous} verifies until {done.until}")
    _keep_locally("jwt_secret", done.key, local)
    say("restart the gateways so they verify with the new key set")


@rotate.command("authenticator")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@operator_errors
def rotate_authenticator(password_stdin: bool) -> None:
    """Set a new password for the gateway's database login (authenticator)."""
    url = ensure_database()
    local = config.load_secrets()
    password = _read_stdin("password") if password_stdin else None
    if password is None and local.from_environment("authenticator_password"):
        raise OperatorError(
            f"the authenticator password comes from {local.source('authenticator_password')}, which this command "
            f"cannot change: pass the new one with --password-stdin, then set it there")
    password = installed.rotate_authenticator(url, password)
    say("authenticator password changed")
    _keep_locally("authenticator_password", password, local)
    say("restart the gateways (and PgBouncer) so new connections log in with it")


def _keep_locally(name: str, value: str, local: config.Secrets) -> None:
    if local.from_environment(name):
        say(f"now set {local.source(name)} to the new value everywhere it is used")
    else:
        say(f"saved in {config.store_secret(name, value)}")
