"""The mail outbox and its delivery worker, against a real SMTP server (aiosmtpd) and the real CLI.

The server runs on a free port for the whole module; the worker runs as `referral-service mailer` (or
inside `serve`) in a process of its own, so stops, restarts and kills are the real ones.
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.policy import default as default_policy
from pathlib import Path

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from referral_service import localdb
from referral_service.mailer import MailConfigError, SmtpTarget, check_sender
from tests.conftest import app_gateway_env
from tests.support import gateway_process, with_login

API_ROLES = ("anonymous", "app_user", "app_admin", "authenticator")
SMTP_USER, SMTP_PASSWORD = "mailer@test", "s:cret/pass word"  # percent-encoded in the URL
FAST = {"max_attempts": 4, "backoff_base_seconds": 0.3, "backoff_cap_seconds": 1, "lease_seconds": 3}


@dataclass
class Inbox:
    """What the SMTP server received, and how it treats recipients: tempfail@ gets 451, reject@ 550."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    delay: float = 0.0  # seconds per message, to stop a worker mid-queue
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if address.startswith("tempfail@"):
            return "451 4.3.0 mailbox busy, try later"
        if address.startswith("reject@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
        return AuthResult(success=ok)

    def subjects(self) -> list[str]:
        with self.lock:
            return [m["Subject"] for m in self.messages]


class SmtpServer:
    """aiosmtpd on one port that a test can take down and bring back."""

    def __init__(self) -> None:
        self.port = localdb.free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://mailer%40test:s%3Acret%2Fpass%20word@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     authenticator=self.inbox.authenticate, auth_require_tls=False)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def outbox_db(app_db_url: str) -> Iterator[str]:
    """The app database with fast retries for this module (the defaults come back afterwards)."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        before = conn.execute("select value from internal.settings where name = 'mail_delivery'").fetchone()[0]
        conn.execute("select internal.set_mail_delivery(%s)", [psycopg.types.json.Jsonb(FAST)])
    try:
        yield app_db_url
    finally:
        with psycopg.connect(app_db_url, autocommit=True) as conn:
            conn.execute("update internal.settings set value = %s where name = 'mail_delivery'",
                         [psycopg.types.json.Jsonb(before)])


@pytest.fixture
def inbox(smtp: SmtpServer, outbox_db: str) -> Inbox:
    """An empty inbox and outbox for each test."""
    with psycopg.connect(outbox_db, autocommit=True) as conn:
        conn.execute("delete from internal.mail_outbox")
    smtp.inbox.messages.clear()
    smtp.inbox.delay = 0.0
    return smtp.inbox


def queue(db_url: str, *messages: tuple[str, str, str]) -> list[int]:
    """Queue (recipient, subject, body) messages in one transaction, as password reset does."""
    with psycopg.connect(db_url) as conn:
        return [conn.execute("select internal.queue_mail(%s, %s, %s, 'test_mail')", list(m)).fetchone()[0]
                for m in messages]


def rows(db_url: str) -> dict[int, tuple]:
    with psycopg.connect(db_url) as conn:
        found = conn.execute("select id, attempts, sent_at is not null, failed_at is not null, claim, last_error"
                             " from internal.mail_outbox order by id").fetchall()
    return {r[0]: r[1:] for r in found}


def wait_for(check: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "referral_service.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


@contextmanager
def worker(db_url: str, smtp_url: str, log: Path, **extra: str) -> Iterator[subprocess.Popen]:
    """`referral-service mailer` in the foreground; SIGTERM at the end (a test may stop or kill it first)."""
    env = {**os.environ, "REFERRAL_SMTP_URL": smtp_url, "REFERRAL_MAILER_DB_URI": db_url,
           "REFERRAL_MAIL_FROM": "Churnistic <no-reply@churnistic.test>", **extra}
    env.pop("DATABASE_URL", None)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "referral_service.cli", "mailer"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def test_outbox_is_private_to_definer_functions(outbox_db):
    with psycopg.connect(outbox_db) as conn:
        assert conn.execute("select relrowsecurity from pg_class where oid = 'internal.mail_outbox'::regclass"
                            ).fetchone() == (True,)
        for role in (*API_ROLES, "mailer"):
            for privilege in ("select", "insert", "update", "delete"):
                assert not conn.execute("select has_table_privilege(%s, 'internal.mail_outbox', %s)",
                                        [role, privilege]).fetchone()[0], (role, privilege)
            assert not conn.execute(
                "select bool_or(has_column_privilege(%s, 'internal.mail_outbox'::regclass, attname, 'select'))"
                " from pg_attribute where attrelid = 'internal.mail_outbox'::regclass and attnum > 0",
                [role]).fetchone()[0], role
        callable_by = dict(conn.execute("""
            select r, coalesce(array_agg(p.proname::text order by p.proname)
                               filter (where has_function_privilege(r, p.oid, 'execute')), '{}')
            from pg_proc p, unnest(%s::text[]) r
            where p.pronamespace = 'internal'::regnamespace and (p.proname like 'mail%%' or p.proname in
                  ('queue_mail', 'purge_mail', 'set_mail_delivery'))
            group by r
        """, [[*API_ROLES, "mailer"]]).fetchall())
        assert callable_by == {**{r: [] for r in API_ROLES}, "mailer": [
            "mail_claim", "mail_next_due", "mail_release", "mail_retry", "mail_sent", "mail_status"]}
        unpinned = conn.execute("""
            select proname from pg_proc where pronamespace = 'internal'::regnamespace and prosecdef
              and (proname like 'mail%%' or proname = 'queue_mail')
              and not exists (select from unnest(proconfig) c where c like 'search_path=%%')
        """).fetchall()
        assert unpinned == []
        # the worker's session role reaches the rows only through the functions
        conn.execute("set role mailer")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select body from internal.mail_outbox")
        conn.rollback()
        conn.execute("set role app_admin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select internal.queue_mail('x@example.com', 's', 'b', 'spam')")


@pytest.mark.parametrize("recipient, subject, body, kind", [
    ("victim@example.com\r\nBcc: many@example.com", "Reset", "body", "password_reset"),
    ("a@example.com, b@example.com", "Reset", "body", "password_reset"),
    ("Name <a@example.com>", "Reset", "body", "password_reset"),
    ("no-at-sign", "Reset", "body", "password_reset"),
    ("a@example.com", "Reset\nBcc: many@example.com", "body", "password_reset"),
    ("a@example.com", "", "body", "password_reset"),
    ("a@example.com", "Reset", "", "password_reset"),
    ("a@example.com", "Reset", "body", "Password Reset"),
    (None, "Reset", "body", "password_reset"),
])
def test_queue_mail_refuses_what_cannot_be_one_safe_message(outbox_db, recipient, subject, body, kind):
    with psycopg.connect(outbox_db) as conn, pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select internal.queue_mail(%s, %s, %s, %s)", [recipient, subject, body, kind])


def test_smtp_url_forms_and_refusals():
    assert SmtpTarget.parse("smtp://127.0.0.1") == SmtpTarget("127.0.0.1", 25, "plain")
    starttls = SmtpTarget.parse("smtp://u%40x:p%3Aw@mail.example.com?starttls=true&timeout=5")
    assert (starttls.port, starttls.security, starttls.username, starttls.password, starttls.timeout) == \
        (587, "starttls", "u@x", "p:w", 5.0)
    assert SmtpTarget.parse("smtps://u:p@[2001:db8::1]").port == 465
    assert "p:w" not in repr(starttls) and "p:w" not in starttls.display() and "p%3Aw" not in starttls.display()
    assert starttls.display() == "smtp://u@x@mail.example.com:587?starttls=true"
    for url, says in [("http://mail.example.com", "smtp://host:port"),
                      ("smtp://u:p@mail.example.com:25", "clear text"),
                      ("smtp://mail.example.com?startls=true", "unknown option 'startls'"),
                      ("smtp://mail.example.com?starttls=maybe", "true or false"),
                      ("smtps://mail.example.com?starttls=true", "TLS from the start"),
                      ("smtp://mail.example.com:99999", "not a valid URL"),
                      ("smtp://mail.example.com/inbox", "no path"),
                      ("smtp://mail.example.com?timeout=0", "between")]:
        with pytest.raises(MailConfigError, match=says):
            SmtpTarget.parse(url)
    assert check_sender("Churnistic <no-reply@churnistic.test>") == "Churnistic <no-reply@churnistic.test>"
    for bad in ("no-reply@x\r\nBcc: y@z", "two@a, three@b", "nobody"):
        with pytest.raises(MailConfigError):
            check_sender(bad)


def test_delivery_wakes_on_notify_and_sends_one_clean_message_each(inbox, smtp, outbox_db, tmp_path):
    log = tmp_path / "mailer.log"
    with worker(outbox_db, smtp.url, log):  # polls every 30 s: only the NOTIFY can make this quick
        wait_for(lambda: "delivering to" in log.read_text(), what="worker start")
        time.sleep(0.5)  # let it LISTEN and fall asleep
        ids = queue(outbox_db, ("ana@example.com", "Reset your password", "Grüße: https://x.test/r#token=SECRET1"),
                    ("bo@example.com", "Second", "plain body"))
        started = time.monotonic()
        wait_for(lambda: len(inbox.messages) == 2, timeout=10, what="two messages")
        assert time.monotonic() - started < 5
        wait_for(lambda: all(r[1] for r in rows(outbox_db).values()), what="marked sent")
    first = next(m for m in inbox.messages if m["To"] == "ana@example.com")
    assert first["From"] == "Churnistic <no-reply@churnistic.test>"
    assert first["Subject"] == "Reset your password" and first["Auto-Submitted"] == "auto-generated"
    assert first["Message-ID"].startswith(f"<outbox.{ids[0]}.") and first["Message-ID"].endswith("@churnistic.test>")
    assert first.get_content().rstrip("\r\n") == "Grüße: https://x.test/r#token=SECRET1"
    assert set(inbox.logins) == {(SMTP_USER.encode(), SMTP_PASSWORD.encode())}
    assert {i: r[:2] for i, r in rows(outbox_db).items()} == {ids[0]: (1, True), ids[1]: (1, True)}
    text = log.read_text()
    assert "SECRET1" not in text and SMTP_PASSWORD not in text and "s%3Acret" not in text
    assert "ana@example.com" not in text and "Traceback" not in text


def test_retry_after_the_smtp_server_was_down(inbox, smtp, outbox_db, tmp_path):
    with psycopg.connect(outbox_db, autocommit=True) as conn:
        conn.execute("""select internal.set_mail_delivery('{"max_attempts": 20}')""")
    smtp.stop()
    try:
        [mid] = queue(outbox_db, ("cy@example.com", "While down", "body"))
        with worker(outbox_db, smtp.url, tmp_path / "mailer.log"):
            wait_for(lambda: rows(outbox_db)[mid][0] >= 2, what="two failed attempts")
            attempts, sent, failed, _claim, error = rows(outbox_db)[mid]
            assert not sent and not failed and "cannot deliver through smtp://mailer@test@127.0.0.1" in error
            assert SMTP_PASSWORD not in error
            smtp.start()
            wait_for(lambda: inbox.subjects() == ["While down"], what="delivery after the server came back")
            wait_for(lambda: rows(outbox_db)[mid][1], what="marked sent")
        assert rows(outbox_db)[mid][0] > attempts and rows(outbox_db)[mid][4] is None
    finally:
        smtp.start() if smtp.controller is None else None
        with psycopg.connect(outbox_db, autocommit=True) as conn:
            conn.execute("select internal.set_mail_delivery(%s)", [psycopg.types.json.Jsonb(FAST)])


def test_a_message_that_keeps_failing_ends_failed_and_visible(inbox, smtp, outbox_db, tmp_path):
    busy, gone, fine = queue(outbox_db, ("tempfail@example.com", "Busy", "b"), ("reject@example.com", "Gone", "b"),
                             ("dee@example.com", "Fine", "b"))
    with worker(outbox_db, smtp.url, tmp_path / "mailer.log"):
        wait_for(lambda: rows(outbox_db)[busy][2], what="the 451 message to be given up")
    state = rows(outbox_db)
    assert state[busy][:3] == (FAST["max_attempts"], False, True) and "451" in state[busy][4]
    assert state[gone][:3] == (1, False, True) and "550" in state[gone][4]  # permanent: no retries
    assert state[fine][:3] == (1, True, False) and inbox.subjects() == ["Fine"]
    status = cli("mailer", "status", env={"DATABASE_URL": outbox_db, "REFERRAL_SMTP_URL": smtp.url})
    assert status.returncode == 0, status.stderr
    assert "failed" in status.stdout and "tempfail@example.com" in status.stdout and "451" in status.stdout
    assert SMTP_PASSWORD not in status.stdout and "delivery: smtp://mailer@test@127.0.0.1" in status.stdout
    again = cli("mailer", "retry", str(gone), env={"DATABASE_URL": outbox_db})
    assert again.returncode == 0 and rows(outbox_db)[gone][:3] == (0, False, False)
    not_failed = cli("mailer", "retry", str(fine), env={"DATABASE_URL": outbox_db})
    assert not_failed.returncode == 1 and not_failed.stderr.count("\n") == 1


def test_restart_mid_queue_loses_nothing_and_sends_nothing_twice(inbox, smtp, outbox_db, tmp_path):
    inbox.delay = 0.1
    ids = queue(outbox_db, *[(f"user{i}@example.com", f"Message {i}", f"body {i}") for i in range(24)])
    log = tmp_path / "mailer.log"
    with worker(outbox_db, smtp.url, log, REFERRAL_MAILER_BATCH="10") as first:
        wait_for(lambda: len(inbox.messages) >= 4, what="a few deliveries")
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
    half = rows(outbox_db)
    assert all(claim is None for _, _, _, claim, _ in half.values())  # nothing left leased
    assert sum(sent for _, sent, _, _, _ in half.values()) == len(inbox.messages) < len(ids)
    with worker(outbox_db, smtp.url, log):
        wait_for(lambda: len(inbox.messages) >= len(ids), what="the rest")
        time.sleep(0.5)  # a duplicate would arrive now
    subjects = inbox.subjects()
    assert sorted(subjects) == sorted(f"Message {i}" for i in range(24))  # each exactly once
    assert {r[:3] for r in rows(outbox_db).values()} == {(1, True, False)}


def test_a_dead_workers_claim_is_retried_after_its_lease(inbox, smtp, outbox_db, tmp_path):
    [mid] = queue(outbox_db, ("eve@example.com", "Orphaned", "b"))
    with psycopg.connect(outbox_db, autocommit=True) as conn:  # a worker that claimed it and died
        conn.execute("set role mailer")
        assert [r[0] for r in conn.execute("select id from internal.mail_claim(10)")] == [mid]
    claimed = time.monotonic()
    with worker(outbox_db, smtp.url, tmp_path / "mailer.log"):
        wait_for(lambda: inbox.subjects() == ["Orphaned"], what="the orphaned message")
    assert time.monotonic() - claimed >= FAST["lease_seconds"] - 0.5
    assert rows(outbox_db)[mid][:3] == (2, True, False)


def test_without_smtp_url_mail_stays_queued_and_status_says_so(inbox, outbox_db, superuser_dsn):
    queue(outbox_db, ("fay@example.com", "Waiting", "b"))
    env = {"DATABASE_URL": outbox_db, "REFERRAL_SMTP_URL": ""}
    status = cli("mailer", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "REFERRAL_SMTP_URL is not set: mail stays queued (1 waiting)" in " ".join(status.stdout.split())
    run = cli("mailer", env=env)
    assert run.returncode == 1 and run.stderr.startswith("error: REFERRAL_SMTP_URL is not set")
    bad = cli("mailer", env={**env, "REFERRAL_SMTP_URL": "smtp://u:p@mail.example.com"})
    assert bad.returncode == 1 and "clear text" in bad.stderr and bad.stderr.count("\n") == 1
    unmigrated = cli("mailer", "status", env={"DATABASE_URL": superuser_dsn})  # database `postgres`
    assert unmigrated.returncode == 1 and "run `referral-service migrate`" in unmigrated.stderr
    assert unmigrated.stderr.count("\n") == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_runs_exactly_one_mailer_and_stops_it_cleanly(inbox, smtp, outbox_db, secrets, tmp_path, workers):
    env = app_gateway_env(outbox_db, secrets, REFERRAL_SMTP_URL=smtp.url, REFERRAL_MAILER_DB_URI=outbox_db,
                          REFERRAL_WORKERS=workers)
    log = tmp_path / "gateway.log"
    with gateway_process(env, log):
        queue(outbox_db, ("gus@example.com", "From serve", "b"))
        wait_for(lambda: inbox.subjects() == ["From serve"], what="delivery by serve's mailer")
        with psycopg.connect(outbox_db) as conn:
            mailers = conn.execute("select count(*) from pg_stat_activity"
                                   " where application_name = 'referral-service mailer'").fetchone()[0]
        assert mailers == 1
    # SIGTERM: the mailer finished and let go before the process ended (uvicorn re-raises the signal)
    assert "referral-service mailer: stopped" in log.read_text()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the worker trusts it only through cafile=)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("scheme", ["starttls", "smtps"])
def test_tls_per_url_scheme_with_verified_certificates(inbox, outbox_db, certificate, tmp_path, scheme):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = localdb.free_port()
    tls = {"tls_context": context, "require_starttls": True} if scheme == "starttls" else {
        "ssl_context": context, "auth_require_tls": False}  # aiosmtpd offers AUTH on implicit TLS only so
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, **tls)
    controller.start()
    base = (f"smtp://mailer%40test:s%3Acret%2Fpass%20word@127.0.0.1:{port}?starttls=true" if scheme == "starttls"
            else f"smtps://mailer%40test:s%3Acret%2Fpass%20word@127.0.0.1:{port}?")
    try:
        [untrusted] = queue(outbox_db, ("hal@example.com", "Untrusted", "b"))
        with worker(outbox_db, base, tmp_path / "untrusted.log"):  # the system CAs do not know this server
            wait_for(lambda: rows(outbox_db)[untrusted][0] >= 1 and rows(outbox_db)[untrusted][4], what="a refusal")
        assert "CERTIFICATE_VERIFY_FAILED" in rows(outbox_db)[untrusted][4] and inbox.messages == []
        with worker(outbox_db, f"{base}&cafile={cert}" if "?" in base else f"{base}?cafile={cert}",
                    tmp_path / "trusted.log"):
            wait_for(lambda: inbox.subjects() == ["Untrusted"], what="delivery over TLS")
        assert set(inbox.logins) == {(SMTP_USER.encode(), SMTP_PASSWORD.encode())}
    finally:
        controller.stop()


def test_starttls_required_but_not_offered_is_never_a_silent_downgrade(inbox, smtp, outbox_db, tmp_path):
    [mid] = queue(outbox_db, ("ivy@example.com", "No downgrade", "b"))
    with worker(outbox_db, f"smtp://127.0.0.1:{smtp.port}?starttls=true", tmp_path / "mailer.log"):
        wait_for(lambda: rows(outbox_db)[mid][4], what="a refusal")
    assert "offers no STARTTLS" in rows(outbox_db)[mid][4] and inbox.messages == []


def test_password_reset_mail_arrives_and_its_link_resets_the_password(inbox, smtp, outbox_db, app_gateway, tmp_path):
    """Issue 11 end to end: request_password_reset over HTTP → outbox → SMTP → follow the link's token."""
    address = f"reset-{time.time_ns()}@example.com"
    with psycopg.connect(outbox_db, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, 'before reset 123')", [address])
    try:
        asked = httpx.post(app_gateway.url + "/rpc/request_password_reset", json={"email": address}, timeout=10)
        assert asked.status_code == 204
        with worker(outbox_db, smtp.url, tmp_path / "mailer.log"):
            mail = wait_for(lambda: next((m for m in inbox.messages if m["To"] == address), None), what="reset mail")
        token = mail.get_content().split("#token=", 1)[1].split()[0]
        reset = httpx.post(app_gateway.url + "/rpc/reset_password",
                           json={"token": token, "new_password": "after reset 456"}, timeout=10)
        assert reset.status_code == 204, reset.text
        signed_in = httpx.post(app_gateway.url + "/rpc/login", json={"email": address, "password": "after reset 456"},
                               timeout=10)
        assert signed_in.status_code == 200 and signed_in.json()["user"]["email"] == address
    finally:
        with psycopg.connect(outbox_db, autocommit=True) as conn:
            conn.execute("delete from internal.users where email = %s", [address])


def test_backoff_doubles_to_its_cap_then_gives_up_and_old_mail_is_purged(outbox_db):
    """The schedule in SQL, with the database's clock: one transaction, rolled back."""
    with psycopg.connect(outbox_db) as conn:
        conn.execute("""select internal.set_mail_delivery('{"max_attempts": 5, "backoff_base_seconds": 30,
                        "backoff_cap_seconds": 100, "lease_seconds": 60}')""")
        mid = conn.execute("select internal.queue_mail('jo@example.com', 'Backoff', 'b', 'test_mail')").fetchone()[0]
        conn.execute("update internal.mail_outbox set created_at = created_at - interval '1 hour' where id = %s", [mid])
        delays = []
        for _ in range(5):
            conn.execute("update internal.mail_outbox set next_attempt_at = now() where id = %s", [mid])
            [claim] = [r[1] for r in conn.execute("select id, claim from internal.mail_claim(100)") if r[0] == mid]
            assert conn.execute("select extract(epoch from leased_until - now()) from internal.mail_outbox"
                                " where id = %s", [mid]).fetchone() == (60,)
            state = conn.execute("select internal.mail_retry(%s, %s, '451 later')", [mid, claim]).fetchone()[0]
            delays.append((state, conn.execute("select extract(epoch from next_attempt_at - now())::int"
                                               " from internal.mail_outbox where id = %s", [mid]).fetchone()[0]))
        assert [d for _, d in delays[:4]] == [30, 60, 100, 100] and [s for s, _ in delays] == ["queued"] * 4 + ["failed"]
        assert conn.execute("select internal.mail_retry(%s, %s, 'late')", [mid, claim]).fetchone() == ("stale",)
        # a lease that ran out on the last attempt ends failed, not tried once more
        other = conn.execute("select internal.queue_mail('kim@example.com', 'Lost', 'b', 'test_mail')").fetchone()[0]
        conn.execute("update internal.mail_outbox set attempts = 5, claim = gen_random_uuid(),"
                     " leased_until = now() - interval '1 second' where id = %s", [other])
        assert other not in [r[0] for r in conn.execute("select id from internal.mail_claim(100)")]
        assert "lease ran out" in conn.execute("select last_error from internal.mail_outbox where id = %s"
                                               " and failed_at is not null", [other]).fetchone()[0]
        # retention: failed after 30 days, sent after 7, queued never
        conn.execute("update internal.mail_outbox set failed_at = now() - interval '31 days' where id = %s", [other])
        sent = conn.execute("select internal.queue_mail('lu@example.com', 'Old', 'b', 'test_mail')").fetchone()[0]
        conn.execute("update internal.mail_outbox set sent_at = now() - interval '8 days' where id = %s", [sent])
        waiting = conn.execute("select internal.queue_mail('mo@example.com', 'Wait', 'b', 'test_mail')").fetchone()[0]
        conn.execute("update internal.mail_outbox set created_at = now() - interval '90 days' where id = %s", [waiting])
        assert conn.execute("select internal.purge_mail(now())").fetchone() == (2,)  # `sent` and `other`
        left = {r[0] for r in conn.execute("select id from internal.mail_outbox where id = any(%s)",
                                           [[mid, other, sent, waiting]])}
        assert left == {mid, waiting}  # `mid` failed just now
        assert conn.execute("select schedule, command from cron.job where jobname = 'purge-sent-mail'").fetchone() == \
            ("17 4 * * *", "select internal.purge_mail(now())")
        conn.rollback()


def test_a_login_that_is_only_a_member_of_mailer_can_deliver(inbox, smtp, outbox_db, tmp_path):
    """The production setup of docs/operations.md: a login of its own, in role mailer, nothing else."""
    with psycopg.connect(outbox_db, autocommit=True) as conn:
        if not conn.execute("select from pg_roles where rolname = 'mail_worker_test'").fetchone():
            conn.execute("create role mail_worker_test login password 'mail worker test' in role mailer")
    url = with_login(outbox_db, "mail_worker_test", "mail%20worker%20test")
    [mid] = queue(outbox_db, ("nia@example.com", "Least privilege", "b"))
    with worker(url, smtp.url, tmp_path / "mailer.log"):
        wait_for(lambda: rows(outbox_db)[mid][1], what="delivery by the dedicated login")
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select recipient from internal.mail_outbox")
