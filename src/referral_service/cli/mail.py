"""`referral-service mailer ...`: the mail delivery worker in the foreground, and the outbox's state."""

from __future__ import annotations

import os
import signal

import click
import psycopg
from rich.table import Table

from ..errors import OperatorError
from . import main
from .common import ensure_database, operator_errors, out, say


def _outbox(db_url: str) -> psycopg.Connection:
    """A connection to a database that has the outbox (migration 017), else one line saying what to run."""
    conn = psycopg.connect(db_url, autocommit=True)
    if conn.execute("select to_regprocedure('internal.mail_status()') is null").fetchone()[0]:
        conn.close()
        raise OperatorError("this database has no mail outbox yet: run `referral-service migrate`")
    return conn


def _settings():
    from ..mailer import MailConfigError, load_mail_settings

    try:
        return load_mail_settings()
    except MailConfigError as exc:
        raise OperatorError(str(exc)) from None


@main.group(invoke_without_command=True)
@click.pass_context
@operator_errors
def mailer(ctx: click.Context) -> None:
    """Send queued mail over SMTP (REFERRAL_SMTP_URL) until stopped; `serve` runs the same worker."""
    if ctx.invoked_subcommand is not None:
        return
    from ..mailer import Mailer

    settings = _settings()
    if settings.target is None:
        raise OperatorError("REFERRAL_SMTP_URL is not set: mail stays queued"
                            " (e.g. REFERRAL_SMTP_URL=smtp://user:password@mail.example.com:587?starttls=true)")
    db_url = settings.db_url or ensure_database()
    worker = Mailer(db_url, settings.target, settings.sender, poll_seconds=settings.poll_seconds,
                    batch=settings.batch)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())  # finish the message being sent, hand back the rest
    worker.run()


@mailer.command("status")
@operator_errors
def mailer_status() -> None:
    """Outbox counts by state, the latest failures, and where mail goes."""
    settings = _settings()
    with _outbox(ensure_database()) as conn:
        states = conn.execute("select state, messages, oldest from internal.mail_status()").fetchall()
        failures = conn.execute("select id, kind, recipient, attempts, failed_at, last_error"
                                " from internal.mail_failures(10)").fetchall()
    table = Table("state", "messages", "oldest")
    for state, count, oldest in states:
        table.add_row(state, str(count), oldest.isoformat(timespec="seconds") if oldest else "")
    out.print(table)
    for mid, kind, recipient, attempts, failed_at, error in failures:  # one line each: greppable, never wrapped
        say(f"failed {mid} ({kind}) to {recipient} after {attempts} attempt(s) at "
            f"{failed_at.isoformat(timespec='seconds')}: {error or ''}")
    waiting = sum(count for state, count, _ in states if state in ("queued", "retrying", "sending"))
    if settings.target is None:
        say(f"REFERRAL_SMTP_URL is not set: mail stays queued ({waiting} waiting) until a mailer runs with it")
    else:
        say(f"delivery: {settings.target.display()} from {settings.sender}")
    if os.environ.get("REFERRAL_MAILER_DB_URI"):
        say("worker database login: REFERRAL_MAILER_DB_URI (as role mailer)")


@mailer.command("retry")
@click.argument("message_id", type=int)
@operator_errors
def mailer_retry(message_id: int) -> None:
    """Queue a failed message again (attempts reset), e.g. after fixing the SMTP settings."""
    with _outbox(ensure_database()) as conn:
        again = conn.execute("select internal.mail_requeue(%s)", [message_id]).fetchone()[0]
    if not again:
        raise OperatorError(f"message {message_id} is not a failed message (see `referral-service mailer status`)")
    say(f"message {message_id} queued again")
