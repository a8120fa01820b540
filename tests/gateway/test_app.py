"""The ASGI app without a database: settings errors, 503 before the schema cache is loaded, catch-all 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from referral_service.gateway import errors
from referral_service.gateway.app import create_app
from referral_service.gateway.settings import SettingsError, load_settings

SECRET = "s" * 32


def _get(app, path: str, **kw) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get(path, **kw)

    return asyncio.run(go())


def test_short_secret_is_one_line(monkeypatch):
    monkeypatch.setenv("PGRST_JWT_SECRET", "short")
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert str(e.value) == "PGRST_JWT_SECRET: the JWT secret must be at least 32 characters long"


def test_missing_secret_means_anonymous_only(monkeypatch):
    """As PostgREST: no secret is allowed; requests with a token then get PGRST300 (tests/security/test_jwks.py)."""
    monkeypatch.delenv("PGRST_JWT_SECRET", raising=False)
    assert load_settings().jwt_secret is None


def test_schema_alias_and_defaults(monkeypatch):
    monkeypatch.setenv("PGRST_DB_SCHEMA", "a, b")
    s = load_settings(jwt_secret=SECRET)
    assert (s.schemas, s.db_anon_role, s.db_max_rows, s.server_port) == (["a", "b"], "anonymous", None, 3000)


def test_503_until_schema_cache_loaded():
    app = create_app(load_settings(jwt_secret=SECRET))
    r = _get(app, "/things")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json() == {"code": "PGRST002", "details": None, "hint": None,
                        "message": "Could not query the database for the schema cache. Retrying."}


def test_unexpected_error_is_generic_500(monkeypatch):
    app = create_app(load_settings(jwt_secret=SECRET))

    async def boom(scope, receive):  # noqa: ANN001
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.gateway, "handle", boom)
    r = _get(app, "/things")
    assert r.status_code == 500
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert r.json()["message"] == "Internal server error"


def test_error_render_headers():
    status, headers, body = errors.render(errors.jwt_claims("JWT expired"))
    assert status == 401
    assert (b"www-authenticate", b'Bearer error="invalid_token", error_description="JWT expired"') in headers
    assert (b"proxy-status", b"PostgREST; error=PGRST303") in headers
    assert (b"content-length", str(len(body)).encode()) in headers
