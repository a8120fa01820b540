"""`referral-service user ...` (issue 11): each command one SQL call, its effect on the account, one-line errors."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.db.test_cli import cli

PASSWORD = "cli user pass 123"


@pytest.fixture
def server(app_db_url):
    return {"DATABASE_URL": app_db_url}


@pytest.fixture(scope="module", autouse=True)
def keeper(app_db_url):
    """An admin that stays, so that the accounts these tests promote are never the last one."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("insert into internal.users (email, password, role) values ('keeper@test.example', 'x', 'admin')"
                     " on conflict do nothing")


@pytest.fixture
def account(app_db_url):
    email = f"cli-{uuid.uuid4().hex[:8]}@test.example"
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, %s)", [email, PASSWORD])
        conn.execute("set role anonymous")
        conn.execute("select api.login(%s, %s)", [email, PASSWORD])  # one session
    yield email
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("delete from internal.users where email = %s", [email])


def state(app_db_url, email):
    with psycopg.connect(app_db_url) as conn:
        return conn.execute(
            "select u.role, u.disabled_at is not null,"
            " (select count(*) from internal.sessions s where s.user_id = u.id and s.revoked_at is null)"
            " from internal.users u where email = %s", [email]).fetchone()


def test_list_shows_accounts_with_sessions(server, account):
    listed = cli("user", "list", env={**server, "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if account in line)
    assert line.split()[1] == "user" and line.split()[-1] == "1"


def test_set_role_disable_enable_revoke_delete(server, account, app_db_url):
    assert cli("user", "set-role", account, "admin", env=server).returncode == 0
    assert state(app_db_url, account) == ("admin", False, 1)
    assert cli("user", "disable", account, env=server).returncode == 0
    assert state(app_db_url, account) == ("admin", True, 0)
    assert cli("user", "enable", account, env=server).returncode == 0
    sessions = cli("user", "sessions", account, env={**server, "COLUMNS": "200"})
    assert sessions.returncode == 0 and "ended" in sessions.stdout and "(disabled)" in sessions.stdout
    assert cli("user", "revoke", account, env=server).stdout.strip() == f"0 session(s) of {account} ended"
    refused = cli("user", "delete", account, env=server, stdin="n\n")
    assert refused.returncode == 1 and state(app_db_url, account) is not None
    assert cli("user", "delete", account, "--yes", env=server).returncode == 0
    assert state(app_db_url, account) is None


def test_reset_password_prints_a_working_link(server, account, app_db_url):
    printed = cli("user", "reset-password", account, "--print", env=server)
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip().split("#token=")[1]
    with psycopg.connect(app_db_url) as conn:
        conn.execute("set local role anonymous")
        conn.execute("select api.reset_password(%s, 'brand new pass 99')", [token])
    queued = cli("user", "reset-password", account, env=server)
    assert queued.returncode == 0 and "queued" in queued.stdout


@pytest.mark.parametrize("args, message", [
    (("set-role", "nobody@test.example", "admin"), "error: no account with email nobody@test.example"),
    (("disable", "nobody@test.example"), "error: no account with email nobody@test.example"),
    (("sessions", "nobody@test.example"), "error: no account with email nobody@test.example"),
])
def test_unknown_accounts_are_one_line(server, args, message):
    done = cli("user", *args, env=server)
    assert done.returncode == 1 and done.stderr.strip() == message


def test_the_last_admin_cannot_be_demoted_from_the_cli(server, app_db_url):
    with psycopg.connect(app_db_url) as conn:
        admins = [e for (e,) in conn.execute("select email from internal.users where role = 'admin'")]
    # demote all but one in a transaction of our own would not show through the CLI: try each in turn
    results = [cli("user", "set-role", email, "user", env=server) for email in admins]
    refused = [r for r in results if r.returncode == 1]
    assert len(refused) == 1 and "cannot remove the last admin" in refused[0].stderr
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        for email in admins:
            conn.execute("update internal.users set role = 'admin' where email = %s", [email])
