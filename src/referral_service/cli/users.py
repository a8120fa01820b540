"""`referral-service user ...`: accounts."""

from __future__ import annotations

import sys

import click
import psycopg

from .. import provision
from ..errors import OperatorError
from . import main
from .common import ensure_database, operator_errors, say


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
