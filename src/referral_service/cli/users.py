"""`referral-service user ...`: accounts."""

from __future__ import annotations

import sys

import click
import psycopg

from .. import accounts, provision
from ..errors import OperatorError
from . import main
from .common import ensure_database, operator_errors, out, say


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
        user_id = provision.create_user(ensure_database(), email, password, role)
    except psycopg.DatabaseError as exc:  # a refusal (weak password, taken email) is the operator's to fix
        raise OperatorError(exc.diag.message_primary or str(exc)) from exc
    say(f"created {role} {email} ({user_id})")


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@user.command("list")
@operator_errors
def user_list() -> None:
    """Every account: email, role, created, last sign-in, active sessions, disabled."""
    from rich.table import Table

    rows = accounts.call(ensure_database(), "internal.account_list")
    table = Table("email", "role", "created", "last sign-in", "sessions", "disabled", box=None)
    for email, role, created, last, sessions, disabled in rows:
        table.add_row(email, role, _when(created), _when(last), str(sessions), "yes" if disabled else "")
    out.print(table)


@user.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["user", "admin"]))
@operator_errors
def user_set_role(email: str, role: str) -> None:
    """Make an account user or admin; its tokens of the old role stop working on their next request."""
    accounts.call(ensure_database(), "internal.account_set_role", email, role)
    say(f"{email} is now {role}")


@user.command("disable")
@click.argument("email")
@operator_errors
def user_disable(email: str) -> None:
    """Disable an account: every session ends, sign-in is refused."""
    accounts.call(ensure_database(), "internal.account_set_disabled", email, True)
    say(f"{email} disabled; its sessions ended")


@user.command("enable")
@click.argument("email")
@operator_errors
def user_enable(email: str) -> None:
    """Enable a disabled account."""
    accounts.call(ensure_database(), "internal.account_set_disabled", email, False)
    say(f"{email} enabled")


@user.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_errors
def user_delete(email: str, yes: bool) -> None:
    """Delete an account and its sessions."""
    if not yes and not click.confirm(f"Delete the account {email} and end its sessions?", default=False):
        raise OperatorError("nothing deleted")
    accounts.call(ensure_database(), "internal.account_delete", email)
    say(f"{email} deleted")


@user.command("sessions")
@click.argument("email")
@operator_errors
def user_sessions(email: str) -> None:
    """An account's sessions, newest first."""
    from rich.table import Table

    rows = accounts.call(ensure_database(), "internal.account_sessions", email)
    table = Table("session", "started", "refreshed", "expires", "state", "client", box=None)
    for sid, created, refreshed, expires, revoked, reason, agent, active in rows:
        state = "active" if active else (f"ended {_when(revoked)} ({reason})" if revoked else "expired")
        table.add_row(str(sid), _when(created), _when(refreshed), _when(expires), state, agent or "")
    out.print(table)


@user.command("revoke")
@click.argument("email")
@operator_errors
def user_revoke(email: str) -> None:
    """End every session of an account (its tokens stop working on their next request)."""
    ended = accounts.call(ensure_database(), "internal.account_revoke", email)[0][0]
    say(f"{ended} session(s) of {email} ended")


@user.command("reset-password")
@click.argument("email")
@click.option("--print", "print_link", is_flag=True, help="Print a one-time reset link instead of mailing it.")
@operator_errors
def user_reset_password(email: str, print_link: bool) -> None:
    """Mail a password reset link (valid 1 hour, single use), or print it with --print."""
    link = accounts.call(ensure_database(), "internal.account_reset_password", email, not print_link)[0][0]
    say(link if print_link else f"reset link queued for {email} (sent by the mailer)")
