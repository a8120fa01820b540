"""JWT authentication and role switching."""

from __future__ import annotations

import time

import pytest

from .conftest import make_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_anonymous_role_and_claims(http):
    assert http.get("/rpc/whoami").json()["claims"] == {"role": "gw_anon"}


def test_token_without_role_is_anonymous(http):
    r = http.get("/rpc/whoami", headers=bearer(make_token(sub="x")))
    assert r.json()["role"] == "gw_anon"
    assert r.json()["claims"] == {"role": "gw_anon", "sub": "x"}


def test_signed_in_role_gets_403_not_401(http):
    r = http.get("/private_stuff", headers=bearer(make_token(role="gw_user")))
    assert r.status_code == 403
    assert "www-authenticate" not in r.headers


# tokens are made when the test runs (times relative to then), not when the module is collected
@pytest.mark.parametrize(("token", "code", "message"), [
    (lambda: "abc.def", "PGRST301", "Expected 3 parts in JWT; got 2"),
    (lambda: make_token(secret="another-secret-another-secret-12345", role="gw_user"), "PGRST301",
     "JWT cryptographic operation failed"),
    (lambda: make_token(role="gw_user", exp=int(time.time()) - 100), "PGRST303", "JWT expired"),
    (lambda: make_token(role="gw_user", nbf=int(time.time()) + 100), "PGRST303", "JWT not yet valid"),
    (lambda: make_token(role="gw_user", iat=int(time.time()) + 100), "PGRST303", "JWT issued at future"),
    (lambda: make_token(role="gw_user", exp="soon"), "PGRST303", "The JWT 'exp' claim must be a number"),
], ids=["parts", "signature", "expired", "nbf", "iat", "exp-type"])
def test_jwt_errors(http, token, code, message):
    r = http.get("/authors", headers=bearer(token()))
    assert r.status_code == 401
    assert r.json() == {"code": code, "details": None, "hint": None, "message": message}
    assert r.headers["www-authenticate"] == f'Bearer error="invalid_token", error_description="{message}"'


def test_empty_bearer(http):
    r = http.get("/authors", headers={"Authorization": "Bearer"})
    assert (r.status_code, r.json()["code"]) == (401, "PGRST301")


def test_skew_allows_recently_expired(http):
    r = http.get("/authors?limit=1", headers=bearer(make_token(role="gw_user", exp=int(time.time()) - 10)))
    assert r.status_code == 200


@pytest.mark.parametrize(("role", "code", "message"), [
    ("ghost", "22023", 'role "ghost" does not exist'),
    ("postgres", "42501", 'permission denied to set role "postgres"'),
    ("gw_outsider", "42501", 'permission denied to set role "gw_outsider"'),
])
def test_roles_the_authenticator_may_not_become(http, role, code, message):
    r = http.get("/authors", headers=bearer(make_token(role=role)))
    assert r.status_code == 401
    assert r.json() == {"code": code, "details": None, "hint": None, "message": message}
