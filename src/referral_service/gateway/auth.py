"""JWT verification: ``Authorization`` header → (role, claims), PostgREST's rules and messages.

``PGRST_JWT_SECRET`` takes PostgREST's forms: a JWKS (``{"keys": [...]}``), a single JWK, or a plain HMAC
secret (at least 32 characters; base64 with ``PGRST_JWT_SECRET_IS_BASE64``). JWKs may be ``oct`` (HS256/384/512),
``RSA`` (RS*/PS*), ``EC`` (ES256/384/512) or ``OKP`` (EdDSA). A token whose header names a ``kid`` is checked
only against the JWKS's keys with that ``kid``; a plain secret or a single JWK verifies any token. With no
secret at all the gateway serves anonymous requests only: a request carrying a token gets PostgREST's 500
PGRST300 "Server lacks JWT secret".
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

import jwt
import orjson
from jwt import algorithms as jwa

from . import errors
from .role_claim import DEFAULT, MISSING, RoleClaimKey

SKEW = 30  # seconds of clock skew allowed on exp/nbf/iat, as PostgREST
_CACHE_MAX = 4096
_HMAC = ("HS256", "HS384", "HS512")
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_BY_CURVE = {"P-256": ("ES256",), "P-384": ("ES384",), "P-521": ("ES512",), "secp256k1": ("ES256K",)}
_SUPPORTED = frozenset((*_HMAC, *_RSA, "ES256", "ES384", "ES512", "ES256K", "EdDSA"))
_OPTIONS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
            "verify_iss": False, "verify_sub": False, "verify_jti": False}


@dataclass(frozen=True, slots=True)
class Auth:
    role: str
    claims_json: str  # request.jwt.claims, always with "role" set
    authed: bool  # the role differs from the anonymous role (42501 → 403 instead of 401)


@dataclass(frozen=True, slots=True)
class Key:
    kid: str | None
    algorithms: tuple[str, ...]
    material: object  # bytes (HMAC) or a public key object
    until: float | None = None  # the JWK's "exp" (ours, not RFC 7517): a retired key verifies until then


@dataclass(frozen=True)
class KeySet:
    keys: tuple[Key, ...]
    by_kid: bool  # a JWKS: a token's kid selects its keys


class SecretError(ValueError):
    pass


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwk(jwk: dict) -> Key:
    kty = jwk.get("kty")
    kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
    text = orjson.dumps({k: v for k, v in jwk.items() if k != "exp"}).decode()
    until = jwk.get("exp") if isinstance(jwk.get("exp"), (int, float)) else None
    try:
        if kty == "oct":
            return Key(kid, _HMAC, _b64url(jwk["k"]), until)
        if kty == "RSA":
            key = jwa.RSAAlgorithm.from_jwk(text)
            return Key(kid, _RSA, key.public_key() if hasattr(key, "private_numbers") else key, until)
        if kty == "EC":
            key = jwa.ECAlgorithm.from_jwk(text)
            return Key(kid, _EC_BY_CURVE.get(jwk.get("crv"), ()),
                       key.public_key() if hasattr(key, "private_numbers") else key, until)
        if kty == "OKP":
            key = jwa.OKPAlgorithm.from_jwk(text)
            return Key(kid, ("EdDSA",), key.public_key() if hasattr(key, "private_bytes_raw") else key, until)
    except (KeyError, TypeError, ValueError, binascii.Error, jwt.PyJWTError) as exc:
        raise SecretError(f"invalid {kty} JWK{f' {kid}' if kid else ''}: {exc}") from None
    raise SecretError(f"unsupported JWK key type {kty!r} (oct, RSA, EC, OKP)")


def parse_secret(secret: str | None, is_base64: bool = False) -> KeySet | None:
    """PostgREST's jwt-secret forms → the keys to verify with; None when no secret is configured."""
    if secret is None or secret == "":
        return None
    stripped = secret.strip()
    if stripped.startswith("{"):
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
            keys = tuple(_jwk(k) for k in doc["keys"] if isinstance(k, dict))
            if not keys:
                raise SecretError("the JWKS has no keys")
            return KeySet(keys, by_kid=True)
        if isinstance(doc, dict) and "kty" in doc:
            return KeySet((_jwk(doc),), by_kid=False)
    raw = secret.encode()
    if is_base64:
        try:
            raw = base64.b64decode(secret.replace("-", "+").replace("_", "/").replace(".", "=") + "==")
        except binascii.Error:
            raise SecretError("the JWT secret is not valid base64") from None
    if len(raw) < 32:
        raise SecretError("the JWT secret must be at least 32 characters long")
    return KeySet((Key(None, _HMAC, raw),), by_kid=False)


class Authenticator:
    def __init__(self, secret: str | None, audience: str | None, anon_role: str | None, cache_seconds: float,
                 role_claim_key: RoleClaimKey = DEFAULT, secret_is_base64: bool = False) -> None:
        self._keys = parse_secret(secret, secret_is_base64)
        self._aud = audience
        self._anon = anon_role
        self._cache_seconds = cache_seconds
        self._role_key = role_claim_key
        self._cache: dict[str, tuple[float, Auth]] = {}
        self.anonymous = Auth(anon_role, orjson.dumps({"role": anon_role}).decode(), False) if anon_role else None

    @classmethod
    def from_settings(cls, settings) -> Authenticator:
        return cls(settings.jwt_secret, settings.jwt_aud, settings.db_anon_role, settings.jwt_cache_seconds,
                   RoleClaimKey.parse(getattr(settings, "jwt_role_claim_key", ".role")),
                   getattr(settings, "jwt_secret_is_base64", False))

    def authenticate(self, authorization: str | None) -> Auth:
        if authorization is None or not authorization[:7].lower() == "bearer ":
            if authorization is not None and authorization.strip().lower() == "bearer":
                raise errors.jwt_decode("Empty JWT is sent in Authorization header")
            return self._anonymous()
        token = authorization[7:].strip()
        if not token:
            raise errors.jwt_decode("Empty JWT is sent in Authorization header")
        if self._keys is None:
            raise errors.ApiError(500, "PGRST300", "Server lacks JWT secret")
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        claims = self._decode(token, now)
        self._check_claims(claims, now)
        result = self._identity(claims)
        expires = now + self._cache_seconds
        exp = claims.get("exp")
        if isinstance(exp, (int, float)):
            expires = min(expires, exp + SKEW)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (expires, result)
        return result

    def _identity(self, claims: dict) -> Auth:
        value = self._role_key.find(claims)
        if value is MISSING or value == "":
            role, authed = self._anonymous().role, False
        else:
            # a non-string role is used as its JSON text, as PostgREST (5 → "5"; it then fails as a role)
            role = value if isinstance(value, str) else orjson.dumps(value).decode()
            authed = role != self._anon
        return Auth(role, orjson.dumps({**claims, "role": role}).decode(), authed)

    def _anonymous(self) -> Auth:
        if self.anonymous is None:
            raise errors.ApiError(401, "PGRST302", "Anonymous access is disabled",
                                  headers=[(b"www-authenticate", b"Bearer")])
        return self.anonymous

    def _decode(self, token: str, now: float) -> dict:
        parts = token.count(".") + 1
        if parts != 3:
            raise errors.jwt_decode(f"Expected 3 parts in JWT; got {parts}")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.jwt_decode("JWT cryptographic operation failed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _SUPPORTED:
            raise errors.jwt_decode("Wrong or unsupported encoding algorithm")
        kid = header.get("kid")
        keys = [k for k in self._keys.keys if alg in k.algorithms and (k.until is None or now < k.until)
                and (not self._keys.by_kid or kid is None or k.kid == kid)]
        if not keys:
            if not self._keys.by_kid or kid is None:
                raise errors.jwt_decode("Wrong or unsupported encoding algorithm")
            raise errors.jwt_decode("No suitable key or wrong key type")
        for key in keys:  # without a kid every suitable key is tried; the first that verifies wins
            try:
                claims = jwt.decode(token, key.material, algorithms=[alg], options=_OPTIONS)
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                raise errors.jwt_decode("JWT cryptographic operation failed") from None
            if not isinstance(claims, dict):
                raise errors.jwt_decode("JWT cryptographic operation failed")
            return claims
        raise errors.jwt_decode("JWT cryptographic operation failed")

    def _check_claims(self, claims: dict, now: float) -> None:
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise errors.jwt_claims(f"The JWT '{name}' claim must be a number")
        if (exp := claims.get("exp")) is not None and now > exp + SKEW:
            raise errors.jwt_claims("JWT expired")
        if (nbf := claims.get("nbf")) is not None and now < nbf - SKEW:
            raise errors.jwt_claims("JWT not yet valid")
        if (iat := claims.get("iat")) is not None and now < iat - SKEW:
            raise errors.jwt_claims("JWT issued at future")
        aud = claims.get("aud")
        if self._aud is None or aud is None or aud == []:
            return
        if isinstance(aud, str):
            ok = aud == self._aud
        elif isinstance(aud, list):
            ok = self._aud in aud
        else:
            raise errors.jwt_claims("The JWT 'aud' claim must be a string or an array of strings")
        if not ok:
            raise errors.jwt_claims("JWT not in audience")
