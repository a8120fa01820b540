"""The mail delivery worker: sends what SQL queued in ``internal.mail_outbox`` over SMTP.

One loop: claim due messages (``internal.mail_claim``: SKIP LOCKED, under a lease), send them over one SMTP
connection, mark each sent or to be retried (``internal.mail_sent`` / ``internal.mail_retry``, which applies
the backoff and gives up after max_attempts); then sleep until the next message is due, a NOTIFY on
``mail_outbox`` (sent by ``internal.queue_mail`` at commit) or the poll interval, whichever comes first.

The database session runs as role ``mailer`` (SET ROLE right after connecting): whatever login the URL has,
the worker can only call the delivery functions. A normal stop releases what was claimed and not tried, so a
restart sends nothing twice; a crash between send and mark sends that message again after its lease (at
least once). Message bodies and the SMTP password are never logged.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg


__all__ = ["MailConfigError", "MailSettings", "Mailer", "SmtpTarget", "load_mail_settings", "start_in_background"]

CHANNEL = "mail_outbox"
DEFAULT_SENDER = "referral-service@localhost"


class MailConfigError(ValueError):
    """A mail setting that cannot work; the message names it and says what to change."""


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_ADDRESS = re.compile(r'[^@\s<>,;"]+@[^@\s<>,;"]+')
_NAMED = re.compile(r'[^<>,;"@]*<' + _ADDRESS.pattern + '>')  # Name <address>
_DEFAULT_PORT = {"plain": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class SmtpTarget:
    """Where mail goes, from ``REFERRAL_SMTP_URL``::

        smtp://host[:port]                              plain SMTP (port 25): a relay on this host or network
        smtp://user:password@host[:port]?starttls=true  STARTTLS, required (port 587)
        smtps://user:password@host[:port]               TLS from the first byte (port 465)

    Options: ``starttls=true|false``, ``timeout=SECONDS`` (each SMTP operation, default 10), ``cafile=PATH``
    (a private CA to trust besides the system's). User and password are percent-decoded. Credentials over
    plain SMTP are refused unless the host is loopback: they would cross the network in clear text."""

    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    cafile: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise MailConfigError(f"REFERRAL_SMTP_URL is not a valid URL: {exc}") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailConfigError("REFERRAL_SMTP_URL must look like smtp://host:port or smtps://user:password@host")
        if parts.path not in ("", "/") or parts.fragment:
            raise MailConfigError("REFERRAL_SMTP_URL takes no path: smtp://[user:password@]host[:port][?starttls=true]")
        options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(options) - {"starttls", "timeout", "cafile"})
        if unknown:
            raise MailConfigError(f"REFERRAL_SMTP_URL: unknown option {unknown[0]!r} (known: starttls, timeout, cafile)")
        starttls = _flag(options.get("starttls", "false"))
        if parts.scheme == "smtps" and starttls:
            raise MailConfigError("REFERRAL_SMTP_URL: smtps:// is TLS from the start; starttls=true is for smtp://")
        security = "tls" if parts.scheme == "smtps" else "starttls" if starttls else "plain"
        username = unquote(parts.username) if parts.username else None
        if username and security == "plain" and parts.hostname not in _LOOPBACK:
            raise MailConfigError("REFERRAL_SMTP_URL: the password would cross the network in clear text;"
                                  " use smtps:// or add ?starttls=true")
        timeout = _number(options, "timeout", 10.0, 1.0, 300.0, "REFERRAL_SMTP_URL option timeout")
        cafile = options.get("cafile") or None
        if cafile and not os.path.isfile(cafile):
            raise MailConfigError(f"REFERRAL_SMTP_URL: cafile {cafile} is not a readable file")
        password = unquote(parts.password) if parts.password is not None else None
        return cls(parts.hostname, port or _DEFAULT_PORT[security], security, username, password, timeout, cafile)

    def display(self) -> str:
        """The target for logs and status: never the password."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "smtps" if self.security == "tls" else "smtp"
        return f"{scheme}://{user}{host}:{self.port}" + ("?starttls=true" if self.security == "starttls" else "")

    def open(self) -> smtplib.SMTP:
        """A connection ready to send: greeted, TLS as configured, logged in."""
        context = ssl.create_default_context(cafile=self.cafile) if self.security != "plain" else None
        helo = socket.gethostname() or "localhost"  # not getfqdn(): a slow resolver must not stall delivery
        if self.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, local_hostname=helo, timeout=self.timeout,
                                                  context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=helo, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server offers no STARTTLS (the URL requires it)")
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise MailConfigError(f"REFERRAL_SMTP_URL: starttls must be true or false, not {text!r}")


def check_sender(value: str) -> str:
    """REFERRAL_MAIL_FROM: one address, bare or as 'Name <address>', no line breaks (header injection)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise MailConfigError("REFERRAL_MAIL_FROM must be one line")
    if not (_ADDRESS.fullmatch(value.strip()) or _NAMED.fullmatch(value.strip())):
        raise MailConfigError(f"REFERRAL_MAIL_FROM must be an address like no-reply@example.com, not {value!r}")
    return value.strip()


def _stderr(line: str) -> None:
    print(f"referral-service mailer: {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class MailSettings:
    """The worker's environment: REFERRAL_SMTP_URL (None: mail stays queued), REFERRAL_MAIL_FROM,
    REFERRAL_MAILER_DB_URI (None: the admin URL), REFERRAL_MAILER_POLL_SECONDS, REFERRAL_MAILER_BATCH."""

    target: SmtpTarget | None
    sender: str
    db_url: str | None
    poll_seconds: float
    batch: int


def load_mail_settings(env: Mapping[str, str] = os.environ) -> MailSettings:
    url = env.get("REFERRAL_SMTP_URL") or None
    target = SmtpTarget.parse(url) if url else None
    sender = check_sender(env.get("REFERRAL_MAIL_FROM") or DEFAULT_SENDER)
    return MailSettings(target, sender, env.get("REFERRAL_MAILER_DB_URI") or None,
                        _number(env, "REFERRAL_MAILER_POLL_SECONDS", 30.0, 0.1, 3600.0),
                        int(_number(env, "REFERRAL_MAILER_BATCH", 10, 1, 100)))


def _number(env: Mapping[str, str], key: str, default: float, low: float, high: float, name: str = "") -> float:
    name = name or key
    text = env.get(key)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise MailConfigError(f"{name} must be a number, not {text!r}") from None
    if not low <= value <= high:
        raise MailConfigError(f"{name} must be between {low:g} and {high:g}")
    return value


@dataclass(frozen=True)
class Outgoing:
    id: int
    recipient: str
    subject: str
    body: str
    kind: str
    attempt: int
    claim: object  # uuid.UUID
    created_at: datetime


class _Refused(Exception):
    """One message could not be sent: `permanent` for a refusal of that message (5xx), else retried."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


class Mailer:
    """The delivery loop. `run()` blocks until `stop()` (from another thread or a signal handler)."""

    def __init__(self, db_url: str, target: SmtpTarget, sender: str, *, poll_seconds: float = 30.0,
                 batch: int = 10, log: Callable[[str], None] = _stderr) -> None:
        self.db_url, self.target, self.sender = db_url, target, check_sender(sender)
        self.envelope_sender = parseaddr(self.sender)[1]
        self.poll_seconds, self.batch, self.log = poll_seconds, batch, log
        self._stop = threading.Event()
        self._unmarked: list[int] = []  # sent, but the database went away before it was marked

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        self.log(f"delivering to {self.target.display()} as {self.sender}")
        pause = 1.0
        while not self.stopping:
            try:
                with self._connect() as conn:
                    pause = 1.0
                    self._serve(conn)
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self.log(f"database: {first}; reconnecting in {pause:g} s")
            except Exception as exc:  # noqa: BLE001 - a bug must not end delivery; claims come back by lease
                self.log(f"unexpected {type(exc).__name__} in the delivery loop; starting again in {pause:g} s")
            else:
                continue
            self._stop.wait(pause)
            pause = min(pause * 2, 30.0)
        self.log("stopped")

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.db_url, autocommit=True, connect_timeout=10,
                               application_name="referral-service mailer")
        try:
            conn.execute("set role mailer")  # least privilege for the whole session, whatever the login
            conn.execute(f"listen {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _serve(self, conn: psycopg.Connection) -> None:
        while self._unmarked:  # a send the last connection could not record
            conn.execute("select internal.mail_sent(%s)", [self._unmarked[0]])
            self._unmarked.pop(0)
        while not self.stopping:
            batch = self._claim(conn)
            if batch:
                self._deliver(conn, batch)
                continue
            due = conn.execute("select internal.mail_next_due()").fetchone()[0]
            self._wait(conn, self.poll_seconds if due is None else min(self.poll_seconds, max(due, 0.05)))

    def _claim(self, conn: psycopg.Connection) -> list[Outgoing]:
        rows = conn.execute("select id, recipient, subject, body, kind, attempt, claim, created_at"
                            " from internal.mail_claim(%s)", [self.batch]).fetchall()
        return [Outgoing(*row) for row in rows]

    def _wait(self, conn: psycopg.Connection, seconds: float) -> None:
        """Until a notification, `seconds`, or stop; in slices of a second so that a stop is seen soon."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # list(): takes every notification already received too, so a burst of mail wakes the loop once
            if list(conn.notifies(timeout=min(left, 1.0), stop_after=1)):
                return

    def _deliver(self, conn: psycopg.Connection, batch: list[Outgoing]) -> None:
        pending = list(batch)
        try:
            smtp = self.target.open()
        except (OSError, smtplib.SMTPException) as exc:
            reason = f"cannot deliver through {self.target.display()}: {_describe(exc)}"
            self.log(reason)
            for message in pending:
                self._retry(conn, message, reason, permanent=False)
            return
        try:
            while pending and not self.stopping:
                message = pending.pop(0)
                try:
                    self._send(smtp, message)
                except _Refused as refused:
                    self._retry(conn, message, refused.reason, refused.permanent)
                    if not refused.permanent and _disconnected(smtp):
                        break  # the connection is gone: hand the rest back untried, the next claim reconnects
                    continue
                self._mark_sent(conn, message)
        finally:
            _quit(smtp)
            if pending:  # stopping, or the connection dropped: not tried, so not counted
                conn.execute("select internal.mail_release(%s)", [[m.claim for m in pending]])

    def _send(self, smtp: smtplib.SMTP, message: Outgoing) -> None:
        try:
            refused = smtp.send_message(self._compose(message), self.envelope_sender, [message.recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _Refused(f"recipient refused: {code} {_text(text)}", 500 <= code < 600) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, server closing...
            raise _Refused(f"{exc.smtp_code} {_text(exc.smtp_error)}",
                           isinstance(exc, smtplib.SMTPDataError) and 500 <= exc.smtp_code < 600) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. an address that needs SMTPUTF8 the server lacks
            raise _Refused(str(exc), True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _Refused(_describe(exc), False) from None
        except ValueError as exc:  # the email package refused a header: never sendable as it is
            raise _Refused(f"message refused before sending: {exc}", True) from None
        if refused:  # one recipient only, so a partial refusal cannot happen; be explicit anyway
            raise _Refused("recipient refused", True)

    def _compose(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(message.created_at)
        # stable across retries, so a receiver can drop the duplicate of an at-least-once resend
        mail["Message-ID"] = f"<outbox.{message.id}.{int(message.created_at.timestamp())}@{_domain(self.envelope_sender)}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to this
        mail.set_content(message.body)
        return mail

    def _mark_sent(self, conn: psycopg.Connection, message: Outgoing) -> None:
        self._unmarked.append(message.id)
        conn.execute("select internal.mail_sent(%s)", [message.id])
        self._unmarked.remove(message.id)
        self.log(f"sent message {message.id} ({message.kind}, attempt {message.attempt})")

    def _retry(self, conn: psycopg.Connection, message: Outgoing, reason: str, permanent: bool) -> None:
        state = conn.execute("select internal.mail_retry(%s, %s, %s, %s)",
                             [message.id, message.claim, reason, permanent]).fetchone()[0]
        outcome = {"queued": "will retry", "failed": "gave up"}.get(state, "claim lost")
        self.log(f"message {message.id} ({message.kind}, attempt {message.attempt}) not sent, {outcome}: {reason}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:300]


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def _disconnected(smtp: smtplib.SMTP) -> bool:
    return getattr(smtp, "sock", None) is None


def _quit(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        if not _disconnected(smtp):
            smtp.quit()
    smtp.close()


def default_db_url(env: Mapping[str, str] = os.environ) -> str:
    """The database the worker reads: REFERRAL_MAILER_DB_URI, else the admin URL (DATABASE_URL or local)."""
    from . import localdb

    return env.get("REFERRAL_MAILER_DB_URI") or localdb.admin_url()


class Background:
    """A mailer on a daemon thread (inside `serve`); `close()` stops it and waits for the current send."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self.thread = threading.Thread(target=mailer.run, name="mailer", daemon=True)
        self.thread.start()

    def close(self, timeout: float = 30.0) -> None:
        self.mailer.stop()
        self.thread.join(timeout)

    def close_on_signals(self) -> None:
        """Close before SIGTERM/SIGINT ends the process: a single uvicorn server restores the handlers it found
        and raises the signal again after its graceful shutdown, which would kill this thread mid-send."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(sig: int, _frame: object, previous: object = previous) -> None:
                self.close()
                signal.signal(sig, previous)
                signal.raise_signal(sig)

            signal.signal(signum, handler)


def start_in_background(env: Mapping[str, str] = os.environ,
                        log: Callable[[str], None] = _stderr) -> Background | None:
    """The mailer of `serve`: started when REFERRAL_SMTP_URL is set, else None (mail stays queued)."""
    settings = load_mail_settings(env)
    if settings.target is None:
        return None
    mailer = Mailer(settings.db_url or default_db_url(env), settings.target, settings.sender,
                    poll_seconds=settings.poll_seconds, batch=settings.batch, log=log)
    background = Background(mailer)
    if threading.current_thread() is threading.main_thread():
        background.close_on_signals()
    return background

