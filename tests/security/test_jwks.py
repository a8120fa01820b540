"""PGRST_JWT_SECRET as PostgREST takes it (JWKS, JWK, plain; HS/RS/ES/EdDSA; kid), the role claim key,
and no secret = anonymous only (issue 13's JWT parity items)."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from referral_service.gateway import errors
from referral_service.gateway.auth import Authenticator
from referral_service.gateway.role_claim import RoleClaimKey
from referral_service.gateway.settings import SettingsError, load_settings
from tests.conftest import app_gateway_env
from tests.support import gateway_process

HMAC_A = "a" * 40
HMAC_B = "b" * 40


def oct_jwk(secret: str, kid: str | None = None, **extra) -> dict:
    key = json.loads(jwt.algorithms.HMACAlgorithm.to_jwk(secret.encode()))
    return {**key, **({"kid": kid} if kid else {}), **extra}


def auth_for(secret: str | dict | None, role_key: str = ".role", anon: str | None = "anon") -> Authenticator:
    text = secret if secret is None or isinstance(secret, str) else json.dumps(secret)
    return Authenticator(text, None, anon, 0, RoleClaimKey.parse(role_key))


def refused(authenticator: Authenticator, token: str) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        authenticator.authenticate(f"Bearer {token}")
    return caught.value


def test_jwks_selects_keys_by_kid():
    keys = auth_for({"keys": [oct_jwk(HMAC_A, "one"), oct_jwk(HMAC_B, "two")]})
    assert keys.authenticate("Bearer " + jwt.encode({"role": "r"}, HMAC_B, headers={"kid": "two"})).role == "r"
    # without a kid every suitable key is tried
    assert keys.authenticate("Bearer " + jwt.encode({"role": "r"}, HMAC_B)).role == "r"
    unknown = refused(keys, jwt.encode({"role": "r"}, HMAC_A, headers={"kid": "three"}))
    assert (unknown.status, unknown.code, unknown.message) == (401, "PGRST301", "No suitable key or wrong key type")
    wrong = refused(keys, jwt.encode({"role": "r"}, HMAC_A, headers={"kid": "two"}))
    assert wrong.message == "JWT cryptographic operation failed"


def test_a_plain_secret_accepts_any_kid_and_hs384_hs512():
    plain = auth_for(HMAC_A * 2)
    for alg in ("HS256", "HS384", "HS512"):
        token = jwt.encode({"role": "r"}, HMAC_A * 2, algorithm=alg, headers={"kid": "whatever"})
        assert plain.authenticate("Bearer " + token).role == "r"


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "ES384", "EdDSA"])
def test_asymmetric_keys(algorithm):
    if algorithm.startswith(("RS", "PS")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    elif algorithm.startswith("ES"):
        private = ec.generate_private_key(ec.SECP256R1() if algorithm == "ES256" else ec.SECP384R1())
        public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        public = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    token = jwt.encode({"role": "r"}, private, algorithm=algorithm, headers={"kid": "k1"})
    for form in ({"keys": [{**public, "kid": "k1"}]}, public):  # a JWKS, or a single JWK
        assert auth_for(form).authenticate("Bearer " + token).role == "r"
    other = jwt.encode({"role": "r"}, HMAC_A, headers={"kid": "k1"})
    assert refused(auth_for({"keys": [{**public, "kid": "k1"}]}), other).code == "PGRST301"


def test_retired_key_stops_at_its_exp():
    keys = auth_for({"keys": [oct_jwk(HMAC_A, "new"), oct_jwk(HMAC_B, "old", exp=int(time.time()) - 1)]})
    assert refused(keys, jwt.encode({"role": "r"}, HMAC_B, headers={"kid": "old"})).message == \
        "No suitable key or wrong key type"
    assert keys.authenticate("Bearer " + jwt.encode({"role": "r"}, HMAC_A, headers={"kid": "new"})).role == "r"


def test_alg_none_and_unknown_algorithms():
    unsigned = jwt.encode({"role": "r"}, None, algorithm="none")
    assert refused(auth_for(HMAC_A), unsigned).message == "Wrong or unsupported encoding algorithm"


@pytest.mark.parametrize(("key", "claims", "role"), [
    (".postgrest.roles[1]", {"postgrest": {"roles": ["a", "b"]}}, "b"),
    ('."https://example.com/role".key', {"https://example.com/role": {"key": "admin"}}, "admin"),
    ('.roles[?(@ ^== "aut")]', {"roles": ["anon", "author"]}, "author"),
    ('.roles[?(@ ==^ "or")]', {"roles": ["x", "editor"]}, "editor"),
    ('.roles[?(@ *== "dmi")]', {"roles": ["x", "admin"]}, "admin"),
    ('.roles[?(@ != "x")]', {"roles": ["x", "y"]}, "y"),
    ('.roles[?(@ == "y")]', {"roles": [1, "y"]}, "y"),
    ("[0]", {}, "anon"),  # the claims are an object: an index finds nothing, so anonymous
    (".app.role", {"app": {"role": 5}}, "5"),  # a non-string is used as its JSON text
    (".missing", {"role": "ignored"}, "anon"),
])
def test_role_claim_key(key, claims, role):
    found = auth_for(HMAC_A, key).authenticate("Bearer " + jwt.encode(claims, HMAC_A))
    assert found.role == role
    assert json.loads(found.claims_json)["role"] == role


@pytest.mark.parametrize("key", ["", "role", ".a[x]", '.roles[?(@ = "x")]', '.a[?(@ == "x")].b', '."open'])
def test_a_bad_role_claim_key_stops_startup(key):
    with pytest.raises(SettingsError, match="PGRST_JWT_ROLE_CLAIM_KEY"):
        load_settings(jwt_secret=HMAC_A, jwt_role_claim_key=key)


@pytest.mark.parametrize(("secret", "message"), [
    ("short", "at least 32 characters"),
    ('{"keys": []}', "no keys"),
    ('{"keys": [{"kty": "RSA", "n": "x"}]}', "invalid RSA JWK"),
    ('{"kty": "XYZ"}', "unsupported JWK key type"),
])
def test_bad_secrets_are_refused_at_start(secret, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(jwt_secret=secret)


def test_no_token_without_a_secret_is_an_error_and_anonymous_works():
    bare = auth_for(None)
    assert bare.authenticate(None).role == "anon"
    lacking = refused(bare, jwt.encode({"role": "r"}, HMAC_A))
    assert (lacking.status, lacking.code, lacking.message, lacking.headers) == \
        (500, "PGRST300", "Server lacks JWT secret", [])
    assert refused(bare, "").code == "PGRST301"  # an empty token is still PGRST301


def test_gateway_without_a_secret_serves_anonymous_only(app_db_url, secrets, tmp_path):
    env = app_gateway_env(app_db_url, secrets, PGRST_JWT_SECRET="")
    with gateway_process(env, tmp_path / "gw.log") as gw:
        assert httpx.get(gw.url + "/offers?limit=1", timeout=10).status_code == 200
        reply = httpx.get(gw.url + "/offers?limit=1", timeout=10,
                          headers={"Authorization": "Bearer " + jwt.encode({"role": "app_user"}, HMAC_A)})
        assert reply.status_code == 500 and "www-authenticate" not in reply.headers
        assert reply.json() == {"code": "PGRST300", "details": None, "hint": None, "message": "Server lacks JWT secret"}


def test_gateway_verifies_sql_tokens_with_the_database_jwks(app_db_url, secrets, tmp_path, app_gateway):
    import psycopg

    with psycopg.connect(app_db_url) as conn:
        jwks = json.dumps(conn.execute("select internal.jwt_keyset()").fetchone()[0])
    env = app_gateway_env(app_db_url, secrets, PGRST_JWT_SECRET=jwks)
    token = app_gateway.login(app_gateway.user_email, app_gateway.user_password)  # signed in SQL, kid in header
    with gateway_process(env, tmp_path / "gw.log") as gw:
        ok = httpx.get(gw.url + "/offers?limit=1", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert ok.status_code == 200
        other = jwt.encode({"role": "app_user"}, HMAC_A, headers={"kid": "not-ours"})
        bad = httpx.get(gw.url + "/offers?limit=1", headers={"Authorization": f"Bearer {other}"}, timeout=10)
        assert bad.status_code == 401 and bad.json()["message"] == "No suitable key or wrong key type"
