"""Failed logins are limited per account (normalised email), for every email, and the count survives the
failed request: login answers a failure with response.status 403 instead of raising."""

import json
import time

import jwt as pyjwt
import psycopg
import pytest

from tests.conftest import act_as
from tests.support import in_parallel

PASSWORD = "correct horse 42"
REFUSED = {"code": "28P01", "details": None, "hint": None, "message": "invalid email or password"}
LIMIT = 10


@pytest.fixture
def carol(db):
    return db.execute("select internal.create_user('carol@example.com', %s)", [PASSWORD]).fetchone()[0]


def attempt(db, email, password):
    """One login as the gateway runs it: (body, response.status, response.headers)."""
    act_as(db, "anonymous")
    body = db.execute("select api.login(%s, %s)", [email, password]).fetchone()[0]
    status, headers = db.execute("select current_setting('response.status', true),"
                                 " current_setting('response.headers', true)").fetchone()
    db.execute("select set_config('response.status', '', true), set_config('response.headers', '', true)")
    db.execute("reset role")
    return body, status or None, headers or None


def failures(db, email):
    """The stored count for `email` (None without a row)."""
    row = db.execute("select failures from internal.login_failures"
                     " where account_key = internal.pseudonym('login:' || lower(trim(%s)))", [email]).fetchone()
    return row[0] if row else None


def refused_429(db, email, password):
    """The attempt is refused with RAISE SQLSTATE 'PGRST' (status 429): returns (body, meta)."""
    act_as(db, "anonymous")
    db.execute("savepoint s")
    with pytest.raises(psycopg.Error) as caught:
        db.execute("select api.login(%s, %s)", [email, password])
    db.execute("rollback to savepoint s")
    db.execute("reset role")
    assert caught.value.sqlstate == "PGRST", caught.value
    return json.loads(caught.value.diag.message_primary), json.loads(caught.value.diag.message_detail)


def test_wrong_password_answers_403_with_the_postgrest_body_and_counts(db, carol):
    body, status, headers = attempt(db, "carol@example.com", "wrong password 1")
    assert (body, status) == (REFUSED, "403")
    assert json.loads(headers) == [{"Proxy-Status": "PostgREST; error=28P01"}]
    assert failures(db, "carol@example.com") == 1


def test_unknown_email_answers_exactly_like_a_wrong_password(db, carol):
    assert attempt(db, "nobody@example.com", "wrong password 1") == attempt(db, "carol@example.com", "wrong 1234")


def test_success_returns_the_token_and_no_status(db, carol, secrets):
    token, status, _ = attempt(db, "carol@example.com", PASSWORD)
    assert status is None
    assert pyjwt.decode(token["access_token"], secrets.jwt_secret, algorithms=["HS256"])["sub"] == str(carol)


@pytest.mark.parametrize("email", ["carol@example.com", "nobody.at.all@example.com"])
def test_after_the_limit_even_the_right_password_is_refused_429(db, carol, email):
    for _ in range(LIMIT):
        assert attempt(db, email, "wrong password 1")[1] == "403"
    body, meta = refused_429(db, email, PASSWORD)
    assert body["code"] == "RS429" and "too many failed logins" in body["message"]
    assert meta["status"] == 429
    assert 1 <= int(meta["headers"]["Retry-After"]) <= 900
    # the refused attempt is not counted: still exactly the limit
    assert failures(db, email) == LIMIT


def test_every_spelling_of_an_email_is_one_account(db, carol):
    spellings = ["carol@example.com", "CAROL@example.com", " Carol@Example.COM ", "carol@EXAMPLE.com  "]
    db.execute("delete from internal.login_failures")
    for i in range(LIMIT):
        attempt(db, spellings[i % len(spellings)], "wrong password 1")
    assert db.execute("select count(*), max(failures) from internal.login_failures").fetchone() == (1, LIMIT)
    for spelling in spellings:
        refused_429(db, spelling, PASSWORD)


def test_other_accounts_are_not_affected(db, carol):
    for _ in range(LIMIT):
        attempt(db, "victim-neighbour@example.com", "wrong password 1")
    refused_429(db, "victim-neighbour@example.com", PASSWORD)
    token, status, _ = attempt(db, "carol@example.com", PASSWORD)
    assert status is None and token["access_token"].count(".") == 2


def test_success_resets_the_count(db, carol):
    for _ in range(LIMIT - 1):
        attempt(db, "carol@example.com", "wrong password 1")
    assert attempt(db, "carol@example.com", PASSWORD)[1] is None
    assert failures(db, "carol@example.com") is None
    for _ in range(LIMIT):
        assert attempt(db, "carol@example.com", "wrong password 1")[1] == "403"


def test_the_window_ends(db, carol):
    for _ in range(LIMIT):
        attempt(db, "carol@example.com", "wrong password 1")
    refused_429(db, "carol@example.com", PASSWORD)
    db.execute("update internal.login_failures set window_start = window_start - interval '15 minutes'")
    assert attempt(db, "carol@example.com", PASSWORD)[1] is None


def test_no_email_is_stored_and_no_api_role_reads_the_counters(db, carol):
    attempt(db, "carol@example.com", "wrong password 1")
    row = db.execute("select account_key::text, failures::text, window_start::text from internal.login_failures")
    assert "carol" not in " ".join(row.fetchone())
    for role in ("anonymous", "app_user", "app_admin"):
        act_as(db, role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select * from internal.login_failures")
        db.rollback()


def test_purge_keeps_live_windows_and_is_scheduled(db, carol):
    db.execute("delete from internal.login_failures")
    attempt(db, "carol@example.com", "wrong password 1")
    attempt(db, "old@example.com", "wrong password 1")
    db.execute("update internal.login_failures set window_start = now() - interval '1 hour'"
               " where account_key = internal.pseudonym('login:old@example.com')")
    assert db.execute("select internal.purge_login_failures(now())").fetchone()[0] == 1
    assert db.execute("select count(*) from internal.login_failures").fetchone()[0] == 1
    job = db.execute("select schedule, command from cron.job where jobname = 'purge-login-failures'").fetchone()
    assert job == ("*/15 * * * *", "select internal.purge_login_failures(now())")


def test_the_limit_is_a_setting(db, carol):
    db.execute("select internal.set_login_throttle(2, 60)")
    attempt(db, "carol@example.com", "wrong password 1")
    attempt(db, "carol@example.com", "wrong password 1")
    assert int(refused_429(db, "carol@example.com", PASSWORD)[1]["headers"]["Retry-After"]) <= 60
    db.execute("select internal.set_login_throttle(null, null)")
    assert attempt(db, "carol@example.com", PASSWORD)[1] is None
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("select internal.set_login_throttle(0, 60)")


def test_parallel_attempts_cannot_exceed_the_limit(app_db_url):
    """Twenty concurrent wrong passwords for one email, each in its own committed transaction."""
    email = f"parallel-{time.time_ns()}@example.com"

    def one() -> str:
        with psycopg.connect(app_db_url) as conn:
            act_as(conn, "anonymous")
            try:
                conn.execute("select api.login(%s, 'wrong password 1')", [email])
                got = conn.execute("select current_setting('response.status', true)").fetchone()[0]
                conn.commit()
            except psycopg.Error as exc:
                got = exc.sqlstate
                conn.rollback()
        return got

    statuses = in_parallel(one, 20)
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("delete from internal.login_failures where account_key = internal.pseudonym('login:' || %s)",
                     [email])
    assert sorted(statuses) == ["403"] * LIMIT + ["PGRST"] * (20 - LIMIT)


def test_successful_logins_of_one_account_do_not_wait_for_each_other(app_db_url):
    """Without failures there is no counter row, so a login holds no lock across its bcrypt and commit."""
    email = f"parallel-ok-{time.time_ns()}@example.com"
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, %s)", [email, PASSWORD])
    try:
        with psycopg.connect(app_db_url) as first, psycopg.connect(app_db_url) as second:
            act_as(first, "anonymous")
            assert first.execute("select api.login(%s, %s)", [email, PASSWORD]).fetchone()[0]["access_token"].count(".") == 2
            # `first` is still open; `second` must not queue behind it
            second.execute("set lock_timeout = '1s'")
            act_as(second, "anonymous")
            assert second.execute("select api.login(%s, %s)", [email, PASSWORD]).fetchone()[0]["access_token"].count(".") == 2
            first.rollback()
            second.rollback()
    finally:
        with psycopg.connect(app_db_url, autocommit=True) as conn:
            conn.execute("delete from internal.users where email = %s", [email])
