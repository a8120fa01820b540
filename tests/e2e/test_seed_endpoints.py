"""The seed plan's endpoints, used as the README shows: log in, list, search, manage offers, log views."""

import httpx
import pytest


@pytest.fixture(scope="module")
def admin(app_gateway):
    with app_gateway.client(app_gateway.login(app_gateway.admin_email, app_gateway.admin_password)) as c:
        yield c


@pytest.fixture(scope="module")
def user(app_gateway):
    with app_gateway.client(app_gateway.login(app_gateway.user_email, app_gateway.user_password)) as c:
        yield c


@pytest.fixture
def anon(app_gateway):
    with app_gateway.client() as c:
        yield c


OFFER = {"title": "E2E Bank $200 checking bonus", "institution": "E2E Bank", "offer_type": "bank_account",
         "requirements": "Direct deposit of $1,000 within 60 days", "status": "active",
         "metadata": {"expiry_date": "2031-12-31"}}


@pytest.fixture
def offer(admin):
    created = admin.post("/offers", json=OFFER, headers={"Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    row = created.json()[0]
    yield row
    admin.delete(f"/offers?id=eq.{row['id']}")


def test_login_wrong_password_is_403_with_postgrest_body(anon):
    reply = anon.post("/rpc/login", json={"email": "nobody@test.example", "password": "whatever 123"})
    assert reply.status_code == 403
    assert reply.json() == {"code": "28P01", "details": None, "hint": None, "message": "invalid email or password"}


def test_list_active_offers_anonymously(anon, offer):
    reply = anon.get("/offers", params={"status": "eq.active", "order": "created_at.desc"})
    assert reply.status_code == 200
    assert offer["id"] in [o["id"] for o in reply.json()]
    assert all(o["status"] == "active" for o in reply.json())


def test_get_one_offer(anon, offer):
    reply = anon.get(f"/offers?id=eq.{offer['id']}", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert reply.status_code == 200
    assert reply.json()["title"] == OFFER["title"]


def test_search(anon, offer):
    reply = anon.get("/rpc/search_offers", params={"search_term": "e2e checking"})
    assert reply.status_code == 200
    assert [o["id"] for o in reply.json()][0] == offer["id"]


def test_patch_and_delete_as_admin(admin, anon):
    created = admin.post("/offers", json={**OFFER, "status": "draft"}, headers={"Prefer": "return=representation"})
    oid = created.json()[0]["id"]
    assert anon.get(f"/offers?id=eq.{oid}").json() == []
    patched = admin.patch(f"/offers?id=eq.{oid}", json={"status": "active"},
                          headers={"Prefer": "return=representation"})
    assert patched.status_code == 200 and patched.json()[0]["status"] == "active"
    assert len(anon.get(f"/offers?id=eq.{oid}").json()) == 1
    assert admin.delete(f"/offers?id=eq.{oid}").status_code == 204
    assert anon.get(f"/offers?id=eq.{oid}").json() == []


@pytest.mark.parametrize("client", ["anon", "user"])
def test_non_admins_cannot_write_offers(request, client, offer):
    c = request.getfixturevalue(client)
    expected = 401 if client == "anon" else 403
    assert c.post("/offers", json=OFFER).status_code == expected
    assert c.patch(f"/offers?id=eq.{offer['id']}", json={"title": "x"}).status_code == expected
    assert c.delete(f"/offers?id=eq.{offer['id']}").status_code == expected


def test_malformed_expiry_is_a_400(admin):
    reply = admin.post("/offers", json={**OFFER, "metadata": {"expiry_date": "31/12/2031"}})
    assert reply.status_code == 400
    assert reply.json()["code"] == "22007" and "expiry_date" in reply.json()["message"]


def test_log_view_and_read_counts_as_admin(anon, admin, user, offer):
    for _ in range(3):
        reply = anon.post("/rpc/log_event", json={"event_type": "offer_view", "event_data": {"offer_id": offer["id"]}})
        assert reply.status_code == 200, reply.text
    reply = user.post("/rpc/log_event", json={"event_type": "offer_view", "event_data": {"offer_id": offer["id"]}})
    assert reply.status_code == 200, reply.text
    counts = admin.get("/offer_view_counts", params={"offer_id": f"eq.{offer['id']}"})
    # one view per offer per visitor per 30 minutes: the anonymous visitor's three views count once
    assert counts.status_code == 200 and counts.json()[0]["view_count"] == 2
    assert anon.get("/offer_view_counts").status_code == 401
    assert user.get("/offer_view_counts").status_code == 403


def test_signup_then_login(anon, app_gateway):
    email = "fresh.signup@test.example"
    reply = anon.post("/rpc/signup", json={"email": email, "password": "brand new 123"})
    assert reply.status_code == 204 and reply.content == b"", reply.text
    token = app_gateway.login(email, "brand new 123")
    me = httpx.get(app_gateway.url + "/users", headers={"Authorization": f"Bearer {token}"})
    assert [u["email"] for u in me.json()] == [email] and me.json()[0]["role"] == "user"
    assert "password" not in me.json()[0]


def test_signup_refuses_weak_password_and_extra_role(anon):
    weak = anon.post("/rpc/signup", json={"email": "weak@test.example", "password": "short"})
    assert weak.status_code == 400 and "too short" in weak.json()["message"]
    admin_try = anon.post("/rpc/signup", json={"email": "evil@test.example", "password": "brand new 123",
                                                "role": "admin"})
    assert admin_try.status_code == 404 and admin_try.json()["code"] == "PGRST202"


def test_password_hash_unreachable_over_http(admin):
    assert admin.get("/users?select=password").status_code == 400
    assert admin.get("/users?password=not.is.null").status_code == 400


def test_monitoring_views_for_admin_only(admin, user):
    assert admin.get("/db_stats").status_code == 200
    assert admin.get("/query_stats?limit=5").status_code == 200
    assert user.get("/db_stats").status_code == 403
