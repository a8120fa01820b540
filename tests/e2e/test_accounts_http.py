"""Issue 11 over HTTP against the real service: sessions, rotating refresh tokens with reuse detection,
logout, revocation on the next request (pre-request), password change and reset, admin RPCs, audit."""

from __future__ import annotations

import uuid

import httpx
import jwt as pyjwt
import psycopg
import pytest

PASSWORD = "session pass 123"
NEW_PASSWORD = "another pass 456"


def fresh_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@test.example"


@pytest.fixture
def account(app_db_url):
    email = fresh_email("acct")
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, %s)", [email, PASSWORD])
    yield email
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("delete from internal.users where email = %s", [email])


def rpc(gw, name: str, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{gw.url}/rpc/{name}", json=body, headers=headers, timeout=15)


def login(gw, email: str, password: str = PASSWORD) -> dict:
    reply = rpc(gw, "login", {"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return reply.json()


def me(gw, token: str) -> httpx.Response:
    return httpx.get(f"{gw.url}/users?select=email,role", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def assert_revoked(reply: httpx.Response) -> None:
    """PostgREST's JWT error: 401 PGRST303 with a WWW-Authenticate that says invalid_token."""
    assert reply.status_code == 401, reply.text
    body = reply.json()
    assert body["code"] == "PGRST303" and body["message"].startswith("JWT ")
    assert reply.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def sql(app_db_url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def test_login_shape_and_access_token_claims(app_gateway, account, secrets):
    reply = login(app_gateway, account)
    assert reply["token_type"] == "bearer" and reply["expires_in"] == 3600
    assert reply["user"]["email"] == account and reply["user"]["role"] == "user"
    claims = pyjwt.decode(reply["access_token"], secrets.jwt_secret, algorithms=["HS256"])
    assert {"sid", "sub", "role", "email", "iat", "exp"} <= set(claims)
    assert me(app_gateway, reply["access_token"]).json() == [{"email": account, "role": "user"}]


def test_refresh_rotates_and_reuse_revokes_the_session(app_gateway, account, app_db_url):
    first = login(app_gateway, account)
    second = rpc(app_gateway, "refresh", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert me(app_gateway, second["access_token"]).status_code == 200
    # the rotated token comes back (a thief, or a replay): refused, and the whole session ends
    reuse = rpc(app_gateway, "refresh", {"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["code"] == "RS401"
    assert_revoked(me(app_gateway, second["access_token"]))
    assert rpc(app_gateway, "refresh", {"refresh_token": second["refresh_token"]}).status_code == 401
    actions = [a for (a,) in sql(app_db_url, "select action from internal.audit_log where email = %s order by id",
                                 [account])]
    assert actions == ["sign_in", "refresh_token_reuse"]


@pytest.mark.parametrize("token", ["", "x", "not-a-token-" * 10, None])
def test_unknown_refresh_tokens_are_refused_alike(app_gateway, token):
    reply = rpc(app_gateway, "refresh", {"refresh_token": token})
    assert reply.status_code == 401
    assert reply.json() == {"code": "RS401", "details": None, "hint": "sign in again", "message": "invalid refresh token"}


def test_logout_local_global_and_others(app_gateway, account):
    a, b, c = (login(app_gateway, account) for _ in range(3))
    assert rpc(app_gateway, "logout", {}, a["access_token"]).status_code == 204
    assert_revoked(me(app_gateway, a["access_token"]))
    assert rpc(app_gateway, "refresh", {"refresh_token": a["refresh_token"]}).status_code == 401
    assert me(app_gateway, b["access_token"]).status_code == 200
    assert rpc(app_gateway, "logout", {"scope": "others"}, b["access_token"]).status_code == 204
    assert_revoked(me(app_gateway, c["access_token"]))
    assert me(app_gateway, b["access_token"]).status_code == 200
    d = login(app_gateway, account)
    assert rpc(app_gateway, "logout", {"scope": "global"}, d["access_token"]).status_code == 204
    for session in (b, d):
        assert_revoked(me(app_gateway, session["access_token"]))
    assert rpc(app_gateway, "logout", {"scope": "everywhere"}, login(app_gateway, account)["access_token"]
               ).status_code == 400
    assert rpc(app_gateway, "logout", {}).status_code == 401  # anonymous: nothing to end


def test_demoted_disabled_and_deleted_accounts_lose_access_on_the_next_request(app_gateway, app_db_url):
    admin = fresh_email("demoted")
    sql(app_db_url, "select internal.create_user(%s, %s, 'admin')", [admin, PASSWORD])
    session = login(app_gateway, admin)
    assert httpx.get(f"{app_gateway.url}/audit_log?limit=1",
                     headers={"Authorization": f"Bearer {session['access_token']}"}, timeout=10).status_code == 200
    sql(app_db_url, "select internal.account_set_role(%s, 'user')", [admin])
    assert_revoked(me(app_gateway, session["access_token"]))
    renewed = rpc(app_gateway, "refresh", {"refresh_token": session["refresh_token"]}).json()
    assert pyjwt.decode(renewed["access_token"], options={"verify_signature": False})["role"] == "app_user"
    assert me(app_gateway, renewed["access_token"]).status_code == 200
    # the token cannot create a new admin any more (the seed's incident)
    made = rpc(app_gateway, "create_user", {"email": fresh_email("x"), "password": PASSWORD, "role": "admin"},
               session["access_token"])
    assert made.status_code == 401
    sql(app_db_url, "select internal.account_set_disabled(%s, true)", [admin])
    assert_revoked(me(app_gateway, renewed["access_token"]))
    assert rpc(app_gateway, "login", {"email": admin, "password": PASSWORD}).status_code == 403
    sql(app_db_url, "select internal.account_set_disabled(%s, false)", [admin])
    again = login(app_gateway, admin)
    sql(app_db_url, "select internal.account_delete(%s)", [admin])
    assert_revoked(me(app_gateway, again["access_token"]))
    assert rpc(app_gateway, "refresh", {"refresh_token": again["refresh_token"]}).status_code == 401


def test_tokens_without_a_session_are_checked_against_the_account(app_gateway, app_db_url, secrets, account):
    """Tokens issued before sessions existed (the seed's 24 h tokens) carry sub but no sid."""
    (user_id,) = sql(app_db_url, "select id from internal.users where email = %s", [account])[0]
    import time

    now = int(time.time())
    old = pyjwt.encode({"role": "app_admin", "sub": str(user_id), "email": account, "iat": now - 5,
                        "exp": now + 3600}, secrets.jwt_secret, algorithm="HS256")
    assert_revoked(me(app_gateway, old))  # the account is a user now: the admin claim is refused
    as_user = pyjwt.encode({"role": "app_user", "sub": str(user_id), "iat": now - 5, "exp": now + 3600},
                           secrets.jwt_secret, algorithm="HS256")
    assert me(app_gateway, as_user).status_code == 200
    sql(app_db_url, "select internal.account_revoke(%s)", [account])
    assert_revoked(me(app_gateway, as_user))
    ghost = pyjwt.encode({"role": "app_user", "sub": str(uuid.uuid4()), "exp": now + 3600}, secrets.jwt_secret,
                         algorithm="HS256")
    assert_revoked(me(app_gateway, ghost))
    forged = pyjwt.encode({"role": "app_user", "sid": "not-a-uuid", "exp": now + 3600}, secrets.jwt_secret,
                          algorithm="HS256")
    assert_revoked(me(app_gateway, forged))


def test_change_password_ends_the_other_sessions(app_gateway, account):
    current, other = login(app_gateway, account), login(app_gateway, account)
    wrong = rpc(app_gateway, "change_password", {"current_password": "not it at all 1", "new_password": NEW_PASSWORD},
                current["access_token"])
    assert wrong.status_code == 403 and wrong.json()["message"] == "current password is incorrect"
    weak = rpc(app_gateway, "change_password", {"current_password": PASSWORD, "new_password": "Password123!"},
               current["access_token"])
    assert weak.status_code == 400 and "too common" in weak.json()["message"]
    done = rpc(app_gateway, "change_password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
               current["access_token"])
    assert done.status_code == 204, done.text
    assert me(app_gateway, current["access_token"]).status_code == 200
    assert_revoked(me(app_gateway, other["access_token"]))
    assert rpc(app_gateway, "login", {"email": account, "password": PASSWORD}).status_code == 403
    login(app_gateway, account, NEW_PASSWORD)
    assert rpc(app_gateway, "change_password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
               ).status_code == 401  # anonymous


def reset_token(app_db_url: str, email: str) -> str:
    """The token in the newest reset mail queued for `email` (what the recipient's link carries)."""
    (body,) = sql(app_db_url, "select body from internal.mail_outbox where recipient = %s and kind = 'password_reset'"
                              " order by id desc limit 1", [email])[0]
    return body.split("#token=", 1)[1].split()[0]


def test_password_reset_flow(app_gateway, account, app_db_url):
    session = login(app_gateway, account)
    known = rpc(app_gateway, "request_password_reset", {"email": account})
    unknown = rpc(app_gateway, "request_password_reset", {"email": fresh_email("nobody")})
    assert known.status_code == unknown.status_code == 204 and known.content == unknown.content == b""
    token = reset_token(app_db_url, account)
    (stored,) = sql(app_db_url, "select count(*) from internal.password_resets where token_hash = sha256(%s::bytea)",
                    [token.encode()])[0]
    assert stored == 1  # kept as a hash only
    weak = rpc(app_gateway, "reset_password", {"token": token, "new_password": "short"})
    assert weak.status_code == 400 and "too short" in weak.json()["message"]  # the link still works after this
    done = rpc(app_gateway, "reset_password", {"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    assert_revoked(me(app_gateway, session["access_token"]))
    login(app_gateway, account, NEW_PASSWORD)
    reuse = rpc(app_gateway, "reset_password", {"token": token, "new_password": "yet another 789"})
    assert reuse.status_code == 400 and reuse.json()["message"] == "password reset link is invalid or has expired"


def test_reset_tokens_expire_and_are_bounded_per_account(app_gateway, account, app_db_url):
    for _ in range(5):
        assert rpc(app_gateway, "request_password_reset", {"email": account.upper()}).status_code == 204
    (queued,) = sql(app_db_url, "select count(*) from internal.mail_outbox where recipient = %s", [account])[0]
    assert queued == 3  # at most three outstanding; the answer is the same beyond
    token = reset_token(app_db_url, account)
    sql(app_db_url, "update internal.password_resets set expires_at = now() - interval '1 second'"
                    " where token_hash = sha256(%s::bytea)", [token.encode()])
    expired = rpc(app_gateway, "reset_password", {"token": token, "new_password": NEW_PASSWORD})
    assert expired.status_code == 400


@pytest.mark.parametrize("password, accepted, words", [
    ("a1" * 36, True, None),  # 72 bytes exactly
    ("a1" * 36 + "x", False, "at most 72 bytes"),
    ("é1" * 24 + "é", False, "at most 72 bytes"),  # 49 characters, 74 bytes: refused, not truncated
    ("short 1", False, "at least 10 characters"),
    ("onlyletterswithoutdigits", False, "mix letters"),
    ("qwerty123456", False, "too common"),
    ("!!Password2024!!", False, "too common"),
    ("aaaaaaaaaa1111111111", False, "too common"),
])
def test_password_policy(app_gateway, password, accepted, words):
    reply = rpc(app_gateway, "signup", {"email": fresh_email("policy"), "password": password})
    if accepted:
        assert reply.status_code == 204, reply.text
    else:
        assert reply.status_code == 400 and words in reply.json()["message"], reply.text


def test_admin_rpcs_and_audit(app_gateway, account, app_db_url):
    admin = app_gateway.login(app_gateway.admin_email, app_gateway.admin_password)
    user = login(app_gateway, account)["access_token"]
    assert rpc(app_gateway, "disable_user", {"email": account}, user).status_code == 403
    assert rpc(app_gateway, "disable_user", {"email": account}, admin).status_code == 204
    assert_revoked(me(app_gateway, user))
    assert rpc(app_gateway, "enable_user", {"email": account}, admin).status_code == 204
    promoted = rpc(app_gateway, "set_user_role", {"email": account, "role": "admin"}, admin)
    assert promoted.status_code == 204
    assert rpc(app_gateway, "set_user_role", {"email": account, "role": "root"}, admin).status_code == 400
    missing = rpc(app_gateway, "set_user_role", {"email": fresh_email("ghost"), "role": "user"}, admin)
    assert missing.status_code == 404 and missing.json()["message"].startswith("no account with email")
    assert rpc(app_gateway, "delete_user", {"email": app_gateway.admin_email}, admin).status_code == 400
    assert rpc(app_gateway, "revoke_user_sessions", {"email": account}, admin).json() == 0
    log = httpx.get(f"{app_gateway.url}/audit_log?email=eq.{account}&select=actor,action&order=id",
                    headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
    assert [entry["action"] for entry in log] == ["sign_in", "disabled", "enabled", "role_changed",
                                                  "sessions_revoked"]
    assert {entry["actor"] for entry in log if entry["action"] != "sign_in"} == {app_gateway.admin_email}
    relogged = login(app_gateway, account)["access_token"]
    assert httpx.get(f"{app_gateway.url}/audit_log", headers={"Authorization": f"Bearer {user}"},
                     timeout=10).status_code == 401  # the old user token is revoked
    assert rpc(app_gateway, "set_user_role", {"email": account, "role": "user"}, relogged).status_code == 204


def test_the_last_admin_stays(db):
    """Neither demote, disable nor delete may leave no enabled admin (any path: CLI, RPC, PATCH /users)."""
    db.execute("update internal.users set role = 'user' where role = 'admin'"
               " and id <> (select id from internal.users where role = 'admin' order by created_at limit 1)")
    (last,) = db.execute("select email from internal.users where role = 'admin'").fetchone()
    for statement in ("select internal.account_set_role(%s, 'user')", "select internal.account_set_disabled(%s, true)",
                      "select internal.account_delete(%s)"):
        db.execute("savepoint s")
        with pytest.raises(psycopg.errors.RaiseException, match="cannot remove the last admin"):
            db.execute(statement, [last])
        db.execute("rollback to savepoint s")


def test_no_api_role_can_read_tokens(db):
    for table in ("internal.refresh_tokens", "internal.password_resets", "internal.mail_outbox"):
        for role in ("anonymous", "app_user", "app_admin", "authenticator"):
            (allowed,) = db.execute("select has_table_privilege(%s, %s, 'select')", [role, table]).fetchone()
            assert not allowed, (role, table)


@pytest.mark.parametrize("address", ['a,b@example.com', 'a<b@example.com', '"a"@example.com', 'a;b@example.com',
                                     'a b@example.com', 'a@b@example.com'])
def test_addresses_the_outbox_could_not_carry_are_refused_everywhere(app_gateway, address):
    for name in ("signup", "request_password_reset"):
        body = {"email": address, "password": PASSWORD} if name == "signup" else {"email": address}
        reply = rpc(app_gateway, name, body)
        assert reply.status_code == 400 and reply.json()["message"] == "email is not a valid address", reply.text


def test_an_existing_account_the_outbox_refuses_answers_like_an_unknown_email(app_gateway, app_db_url):
    """An account created before the stricter address rule: same 204, no mail, no token."""
    odd = f"odd,{uuid.uuid4().hex[:6]}@test.example"
    sql(app_db_url, "insert into internal.users (email, password) values (%s, 'x')", [odd])
    try:
        with psycopg.connect(app_db_url) as conn:
            conn.execute("set local role anonymous")
            conn.execute("select api.request_password_reset(%s)", [odd.replace(",", "")])  # valid, unknown
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                conn.execute("select api.request_password_reset(%s)", [odd])  # the rule refuses it first
        assert sql(app_db_url, "select internal.send_reset_mail(u) from internal.users u where email = %s",
                   [odd]) == [(False,)]
        assert sql(app_db_url, "select count(*) from internal.password_resets r join internal.users u"
                               " on u.id = r.user_id where u.email = %s", [odd]) == [(0,)]
    finally:
        sql(app_db_url, "delete from internal.users where email = %s", [odd])
