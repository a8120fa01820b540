"""JWT verification: ``Authorization`` header → (role, claims), PostgREST's rules and messages."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
import orjson

from . import errors

SKEW = 30  # seconds of clock skew allowed on exp/nbf/iat, as PostgREST
_ALGORITHMS = ["HS256", "HS384", "HS512"]
_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class Auth:
    role: str
    claims_json: str  # request.jwt.claims, always with "role" set
    authed: bool  # the role differs from the anonymous role (42501 → 403 instead of 401)


class Authenticator:
    def __init__(self, secret: str, audience: str | None, anon_role: str | None, cache_seconds: float) -> None:
        self._secret = secret
        self._aud = audience
        self._anon = anon_role
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Auth]] = {}
        self.anonymous = Auth(anon_role, orjson.dumps({"role": anon_role}).decode(), False) if anon_role else None

    def authenticate(self, authorization: str | None) -> Auth:
        if authorization is None or not authorization[:7].lower() == "bearer ":
            if authorization is not None and authorization.strip().lower() == "bearer":
                raise errors.jwt_decode("Empty JWT is sent in Authorization header")
            return self._anonymous()
        token = authorization[7:].strip()
        if not token:
            raise errors.jwt_decode("Empty JWT is sent in Authorization header")
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        claims = self._decode(token)
        self._check_claims(claims, now)
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            anon = self._anonymous()
            role, authed = anon.role, False
        else:
            authed = role != self._anon
        result = Auth(role, orjson.dumps({**claims, "role": role}).decode(), authed)
        expires = now + self._cache_seconds
        exp = claims.get("exp")
        if isinstance(exp, (int, float)):
            expires = min(expires, exp + SKEW)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (expires, result)
        return result

    def _anonymous(self) -> Auth:
        if self.anonymous is None:
            raise errors.ApiError(401, "PGRST302", "Anonymous access is disabled",
                                  headers=[(b"www-authenticate", b"Bearer")])
        return self.anonymous

    def _decode(self, token: str) -> dict:
        parts = token.count(".") + 1
        if parts != 3:
            raise errors.jwt_decode(f"Expected 3 parts in JWT; got {parts}")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=_ALGORITHMS,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                         "verify_iss": False, "verify_sub": False, "verify_jti": False},
            )
        except jwt.InvalidSignatureError:
            raise errors.jwt_decode("JWT cryptographic operation failed") from None
        except jwt.InvalidAlgorithmError:
            raise errors.jwt_decode("Wrong or unsupported encoding algorithm") from None
        except jwt.PyJWTError:
            raise errors.jwt_decode("JWT cryptographic operation failed") from None
        if not isinstance(claims, dict):
            raise errors.jwt_decode("JWT cryptographic operation failed")
        return claims

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
