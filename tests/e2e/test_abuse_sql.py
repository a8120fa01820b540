"""Issue 10 items 7 (per account), 8 and 11 over HTTP, against the real gateway and database:
login throttled per account whatever the client, signup silent about existing emails, analytics bounded."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg
import pytest

REFUSED = b'{"code":"28P01","details":null,"hint":null,"message":"invalid email or password"}'
PASSWORD = "abuse pass 123"
LIMIT = 10


def fresh_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@test.example"


@pytest.fixture
def account(app_db_url):
    email = fresh_email("throttled")
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, %s)", [email, PASSWORD])
    yield email
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("delete from internal.users where email = %s", [email])


@pytest.fixture(scope="module")
def user_token(app_gateway):
    return app_gateway.login(app_gateway.user_email, app_gateway.user_password)


def post(app_gateway, path, body, **headers):
    return httpx.post(app_gateway.url + path, json=body, headers=headers, timeout=15)


# --- login: per account --------------------------------------------------------------------------------

def test_a_wrong_password_answers_as_before_byte_for_byte(app_gateway, account):
    for email in (account, fresh_email("nobody")):
        reply = post(app_gateway, "/rpc/login", {"email": email, "password": "wrong password 1"})
        assert reply.status_code == 403
        assert reply.content == REFUSED
        assert reply.headers["content-type"] == "application/json; charset=utf-8"
        assert reply.headers["proxy-status"] == "PostgREST; error=28P01"


def test_a_successful_login_is_a_json_session(app_gateway, account):
    """The Supabase shape since issue 11 (the seed's bare token string: REFERRAL_LEGACY_TOKENS)."""
    reply = post(app_gateway, "/rpc/login", {"email": account, "password": PASSWORD})
    assert reply.status_code == 200
    assert reply.json()["access_token"].startswith("eyJ") and reply.json()["access_token"].count(".") == 2
    assert reply.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("exists", [True, False])
def test_rotating_clients_do_not_multiply_the_attempts_on_one_account(app_gateway, account, user_token, exists):
    """Anonymous, with a token, other spellings, other claimed addresses: one account's budget."""
    email = account if exists else fresh_email("ghost")
    spellings = [email, email.upper(), " " + email.title() + " "]
    clients = [{}, {"Authorization": f"Bearer {user_token}"}, {"X-Forwarded-For": "198.51.100.23"},
               {"User-Agent": "other agent"}]
    for i in range(LIMIT):
        reply = post(app_gateway, "/rpc/login", {"email": spellings[i % 3], "password": f"guess {i} x"},
                     **clients[i % len(clients)])
        assert reply.status_code == 403, reply.text
    for i, headers in enumerate(clients):
        reply = post(app_gateway, "/rpc/login", {"email": spellings[i % 3], "password": PASSWORD}, **headers)
        assert reply.status_code == 429, reply.text
        assert 1 <= int(reply.headers["retry-after"]) <= 900
        assert reply.json()["code"] == "RS429" and reply.json()["message"] == "too many failed logins for this account"


def test_the_throttle_answers_alike_for_existing_and_unknown_emails(app_gateway, account):
    answers = []
    for email in (account, fresh_email("ghost")):
        for _ in range(LIMIT):
            post(app_gateway, "/rpc/login", {"email": email, "password": "wrong password 1"})
        reply = post(app_gateway, "/rpc/login", {"email": email, "password": "wrong password 1"})
        body = reply.json()
        answers.append((reply.status_code, body["code"], body["message"], sorted(body)))
    assert answers[0] == answers[1] and answers[0][0] == 429  # the seconds to wait may differ by one


def test_a_locked_account_does_not_lock_others(app_gateway, account):
    for _ in range(LIMIT + 1):
        post(app_gateway, "/rpc/login", {"email": account, "password": "wrong password 1"})
    assert app_gateway.login(app_gateway.user_email, app_gateway.user_password).count(".") == 2


def test_get_is_no_way_around_the_count(app_gateway, account):
    """GET runs read-only: the attempt cannot be counted, so it is not made at all (no token either)."""
    reply = httpx.get(app_gateway.url + "/rpc/login", params={"email": account, "password": PASSWORD}, timeout=15)
    assert reply.status_code not in (200, 403), reply.text


# --- signup --------------------------------------------------------------------------------------------

def _shape(reply: httpx.Response) -> tuple:
    skip = {"date", "x-request-id"}
    return reply.status_code, reply.content, sorted((k, v) for k, v in reply.headers.items() if k not in skip)


def test_signup_answers_the_same_for_new_and_existing_emails(app_gateway, account):
    new = post(app_gateway, "/rpc/signup", {"email": fresh_email("newcomer"), "password": "brand new 123"})
    existing = post(app_gateway, "/rpc/signup", {"email": account.upper(), "password": "brand new 123"})
    assert _shape(new) == _shape(existing)
    assert new.status_code == 204 and new.content == b""


def test_signup_for_an_existing_email_changes_nothing(app_gateway, account, app_db_url):
    post(app_gateway, "/rpc/signup", {"email": account, "password": "takeover 1234"})
    assert post(app_gateway, "/rpc/login", {"email": account, "password": "takeover 1234"}).status_code == 403
    assert post(app_gateway, "/rpc/login", {"email": account, "password": PASSWORD}).status_code == 200
    with psycopg.connect(app_db_url) as conn:
        assert conn.execute("select count(*) from internal.users where lower(email) = %s",
                            [account]).fetchone()[0] == 1


def test_signup_timing_does_not_tell_existing_emails(app_gateway, account):
    def took(email: str) -> float:
        t0 = time.perf_counter()
        post(app_gateway, "/rpc/signup", {"email": email, "password": "brand new 123"})
        return time.perf_counter() - t0

    existing = min(took(account) for _ in range(3))
    new = min(took(fresh_email("timing")) for _ in range(3))
    assert max(existing, new) / min(existing, new) < 2


def test_signup_validation_is_unchanged(app_gateway, account):
    for email in (account, fresh_email("weak")):
        reply = post(app_gateway, "/rpc/signup", {"email": email, "password": "short"})
        assert reply.status_code == 400 and "too short" in reply.json()["message"]


# --- analytics ----------------------------------------------------------------------------------------

@pytest.fixture
def offer(app_gateway):
    with app_gateway.client(app_gateway.login(app_gateway.admin_email, app_gateway.admin_password)) as admin:
        created = admin.post("/offers", headers={"Prefer": "return=representation"},
                             json={"title": f"Abuse {uuid.uuid4().hex[:6]}", "institution": "E2E",
                                   "offer_type": "bank_account", "status": "active"})
        assert created.status_code == 201, created.text
        row = created.json()[0]
        yield row["id"], admin
        admin.delete(f"/offers?id=eq.{row['id']}")


def view(app_gateway, offer_id, agent, **data):
    return post(app_gateway, "/rpc/log_event",
                {"event_type": "offer_view", "event_data": {"offer_id": offer_id, **data}}, **{"User-Agent": agent})


@pytest.mark.parametrize("data, message", [
    ({"pad": "x" * 4000}, "too large"),
    ({"a": {"b": {"c": {"d": "deep"}}}}, "nested too deeply"),
    ({f"k{i}": 1 for i in range(50)}, "too many values"),
])
def test_event_data_is_bounded_with_a_400_that_says_what_to_change(app_gateway, offer, data, message):
    reply = view(app_gateway, offer[0], f"bounded {uuid.uuid4()}", **data)
    assert reply.status_code == 400 and reply.json()["code"] == "22023"
    assert message in reply.json()["message"]


def test_repeated_views_count_once_per_visitor(app_gateway, offer):
    offer_id, admin = offer
    agents = [f"viewer {uuid.uuid4()}" for _ in range(2)]
    ids = [view(app_gateway, offer_id, agents[0]).json() for _ in range(5)]
    assert len(set(ids)) == 1 and uuid.UUID(ids[0])
    view(app_gateway, offer_id, agents[1])
    counts = admin.get("/offer_view_counts", params={"offer_id": f"eq.{offer_id}"}).json()
    assert counts[0]["view_count"] == 2


def test_a_visitor_is_limited_to_60_events_a_minute(app_gateway, offer):
    offer_id, _ = offer
    email = fresh_email("clicker")
    assert post(app_gateway, "/rpc/signup", {"email": email, "password": PASSWORD}).status_code == 204
    token = app_gateway.login(email, PASSWORD)
    click = {"event_type": "offer_click", "event_data": {"offer_id": offer_id}}
    auth = {"Authorization": f"Bearer {token}"}
    codes = [post(app_gateway, "/rpc/log_event", click, **auth).status_code for _ in range(60)]
    assert codes == [200] * 60
    over = post(app_gateway, "/rpc/log_event", click, **auth, **{"User-Agent": "another agent"})
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60
    assert over.json()["code"] == "RS429"
    # the user's views are limited too; another visitor is not
    assert post(app_gateway, "/rpc/log_event", {**click, "event_type": "offer_view"}, **auth).status_code == 429
    assert view(app_gateway, offer_id, f"bystander {uuid.uuid4()}").status_code == 200
