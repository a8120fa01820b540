"""Settings that behave as in PostgREST v13 (issue 13 item 8), against real gateway processes.

db-max-rows unset = no limit; openapi-mode follow-privileges (default) / ignore-privileges / disabled;
openapi-server-proxy-uri; db-root-spec; server-cors-allowed-origins never granting `*` on a refused preflight.
A database of this module's own (roles `sp_*`), so nothing here depends on the app's grants.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import jwt
import psycopg
import pytest

from tests.support import fresh_database, gateway_process, with_login

DB = "settings_parity"
SECRET = "settings-parity-secret-0123456789abcdef"
ROWS = 1205  # more than the old fixed limit of 1000
SCHEMA = f"""
do $$ begin
  if not exists (select from pg_roles where rolname = 'sp_authenticator') then
    create role sp_authenticator login password 'sp_authenticator' noinherit;
    create role sp_anon nologin;
    create role sp_admin nologin;
    grant sp_anon, sp_admin to sp_authenticator;
  end if;
end $$;
create schema api;
grant usage on schema api to sp_anon, sp_admin;
create table api.items (id int primary key, name text);
insert into api.items select g, 'item ' || g from generate_series(1, {ROWS}) g;
grant select on api.items to sp_anon, sp_admin;
create table api.audit (id int primary key);
grant select, insert on api.audit to sp_admin;
create table api.hidden_cols (id int primary key, note text);
grant select (id) on api.hidden_cols to sp_anon;
create function api.hello() returns text language sql stable as $$ select 'hello' $$;
create function api.admin_only() returns text language sql stable as $$ select 'admin' $$;
create function api.root() returns json language sql stable as $$ select '{{"root": true}}'::json $$;
revoke execute on all functions in schema api from public;
grant execute on function api.hello(), api.root() to sp_anon, sp_admin;
grant execute on function api.admin_only() to sp_admin;
"""


@pytest.fixture(scope="module")
def parity_db(superuser_dsn: str) -> str:
    return fresh_database(superuser_dsn, DB, SCHEMA)


def _env(parity_db: str, **extra: str) -> dict[str, str]:
    return {"PGRST_DB_URI": with_login(parity_db, "sp_authenticator", "sp_authenticator", DB),
            "PGRST_DB_SCHEMAS": "api", "PGRST_DB_ANON_ROLE": "sp_anon", "PGRST_JWT_SECRET": SECRET,
            "PGRST_DB_POOL": "2", **extra}


@pytest.fixture(scope="module")
def default_gw(parity_db: str, tmp_path_factory) -> Iterator[str]:
    """Nothing set beyond the connection: PostgREST's defaults."""
    with gateway_process(_env(parity_db), tmp_path_factory.mktemp("parity-default") / "gw.log",
                         module="referral_service.gateway.server", ready_path="/items?limit=0") as gw:
        yield gw.url


@pytest.fixture(scope="module")
def tuned_gw(parity_db: str, tmp_path_factory) -> Iterator[str]:
    env = _env(parity_db, PGRST_DB_MAX_ROWS="3", PGRST_OPENAPI_MODE="ignore-privileges",
               PGRST_OPENAPI_SERVER_PROXY_URI="https://api.example.com/v1",
               PGRST_SERVER_CORS_ALLOWED_ORIGINS="https://good.example, https://other.example")
    with gateway_process(env, tmp_path_factory.mktemp("parity-tuned") / "gw.log",
                         module="referral_service.gateway.server", ready_path="/items?limit=0") as gw:
        yield gw.url


def token(role: str) -> str:
    return jwt.encode({"role": role}, SECRET, algorithm="HS256")


# --- db-max-rows ---------------------------------------------------------------------------------------


def test_max_rows_unset_means_no_limit(default_gw):
    r = httpx.get(default_gw + "/items?select=id", headers={"Prefer": "count=exact"}, timeout=10)
    assert r.status_code == 200 and len(r.json()) == ROWS
    assert r.headers["content-range"] == f"0-{ROWS - 1}/{ROWS}"


def test_max_rows_empty_is_unset_too(parity_db, tmp_path):
    with gateway_process(_env(parity_db, PGRST_DB_MAX_ROWS=""), tmp_path / "gw.log",
                         module="referral_service.gateway.server", ready_path="/items?limit=0") as gw:
        assert len(httpx.get(gw.url + "/items?select=id", timeout=10).json()) == ROWS


def test_max_rows_set_caps_reads(tuned_gw):
    r = httpx.get(tuned_gw + "/items?select=id", headers={"Prefer": "count=exact"}, timeout=10)
    assert r.status_code == 206 and [row["id"] for row in r.json()] == [1, 2, 3]
    assert r.headers["content-range"] == f"0-2/{ROWS}"


# --- openapi-mode ----------------------------------------------------------------------------------------


def paths(url: str, role: str | None = None) -> set[str]:
    headers = {"Authorization": f"Bearer {token(role)}"} if role else {}
    r = httpx.get(url + "/", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return set(r.json()["paths"])


def test_openapi_follows_privileges_by_default(default_gw):
    anon = paths(default_gw)
    assert {"/items", "/hidden_cols", "/rpc/hello", "/rpc/root"} <= anon  # a column grant is enough
    assert "/audit" not in anon and "/rpc/admin_only" not in anon
    doc = httpx.get(default_gw + "/", timeout=10).json()
    assert "audit" not in doc["definitions"] and not any(".audit." in p for p in doc["parameters"])
    admin = paths(default_gw, "sp_admin")
    assert {"/items", "/audit", "/rpc/admin_only", "/rpc/hello"} <= admin
    assert "/hidden_cols" not in admin


def test_openapi_follows_grants_made_after_start(default_gw, parity_db):
    with psycopg.connect(parity_db, autocommit=True) as conn:
        conn.execute("grant select on api.audit to sp_anon")
        try:
            assert "/audit" in paths(default_gw)
        finally:
            conn.execute("revoke select on api.audit from sp_anon")
    assert "/audit" not in paths(default_gw)


def test_openapi_ignore_privileges_lists_everything(tuned_gw):
    assert {"/items", "/audit", "/hidden_cols", "/rpc/admin_only", "/rpc/hello"} <= paths(tuned_gw)


def test_openapi_disabled_is_pgrst126(parity_db, tmp_path):
    env = _env(parity_db, PGRST_OPENAPI_MODE="disabled", PGRST_DB_ROOT_SPEC="root")
    with gateway_process(env, tmp_path / "gw.log", module="referral_service.gateway.server",
                         ready_path="/items?limit=0") as gw:
        r = httpx.get(gw.url + "/", timeout=10)
        assert r.status_code == 404  # checked before db-root-spec, as PostgREST
        assert r.json() == {"code": "PGRST126", "details": None, "hint": None,
                            "message": "Root endpoint metadata is disabled"}
        assert httpx.get(gw.url + "/items?limit=1", timeout=10).status_code == 200


def test_openapi_mode_typo_refuses_to_start(parity_db):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRST_")}
    env.update(_env(parity_db, PGRST_OPENAPI_MODE="follow-privilege", PGRST_SERVER_PORT="0"))
    done = subprocess.run([sys.executable, "-m", "referral_service.gateway.server"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == ("referral-service: PGRST_OPENAPI_MODE: Invalid openapi-mode. "
                                   "Check your configuration.")


# --- openapi-server-proxy-uri ----------------------------------------------------------------------------


def test_proxy_uri_names_the_public_address(tuned_gw, default_gw):
    doc = httpx.get(tuned_gw + "/", timeout=10).json()
    assert (doc["schemes"], doc["host"], doc["basePath"]) == (["https"], "api.example.com:443", "/v1")
    plain = httpx.get(default_gw + "/", timeout=10).json()
    assert plain["schemes"] == ["http"] and plain["basePath"] == "/"
    assert plain["host"] == default_gw.removeprefix("http://")


@pytest.mark.parametrize("uri", ["ftp://x.example", "https://user:pw@x.example", "https://x.example/?q=1",
                                 "https://x.example:70000", "/relative/path", "https://"])
def test_malformed_proxy_uri_is_refused(uri):
    from referral_service.gateway.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="Malformed proxy uri, a correct example: "
                                            "https://example.com:8443/basePath"):
        load_settings(env={"PGRST_JWT_SECRET": SECRET, "PGRST_OPENAPI_SERVER_PROXY_URI": uri})


# --- db-root-spec ---------------------------------------------------------------------------------------


def test_root_spec_function_answers_the_root(parity_db, tmp_path):
    env = _env(parity_db, PGRST_DB_ROOT_SPEC="private.root")  # only the name part counts, as PostgREST
    with gateway_process(env, tmp_path / "gw.log", module="referral_service.gateway.server",
                         ready_path="/items?limit=0") as gw:
        r = httpx.get(gw.url + "/", timeout=10)
        assert r.status_code == 200 and r.json() == {"root": True}
        assert r.headers["content-type"].startswith("application/json")
        assert httpx.post(gw.url + "/", json={}, timeout=10).json() == {"root": True}
        allow = httpx.options(gw.url + "/", timeout=10).headers["allow"]
        assert allow == "OPTIONS,GET,HEAD,POST"  # the RPC's, for a stable function
        assert httpx.get(gw.url + "/rpc/hello", timeout=10).json() == "hello"


# --- server-cors-allowed-origins -------------------------------------------------------------------------

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def test_cors_list_grants_only_listed_origins(tuned_gw, default_gw):
    good = httpx.options(tuned_gw + "/items", headers={"Origin": "https://good.example", **PREFLIGHT}, timeout=10)
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    assert good.headers["access-control-allow-credentials"] == "true"
    for origin in ("https://evil.example", "https://good.example.evil", "null"):
        bad = httpx.options(tuned_gw + "/items", headers={"Origin": origin, **PREFLIGHT}, timeout=10)
        assert "access-control-allow-origin" not in bad.headers, origin  # PostgREST would send `*` here
        plain = httpx.get(tuned_gw + "/items?limit=1", headers={"Origin": origin}, timeout=10)
        assert "access-control-allow-origin" not in plain.headers
    bare = httpx.options(tuned_gw + "/items", timeout=10)  # no Origin: an OPTIONS request, not a preflight
    assert "access-control-allow-origin" not in bare.headers
    # without a list, any origin, as before
    r = httpx.options(default_gw + "/items", headers={"Origin": "https://any.example", **PREFLIGHT}, timeout=10)
    assert r.headers["access-control-allow-origin"] == "*"
    assert httpx.options(default_gw + "/items", timeout=10).headers["access-control-allow-origin"] == "*"
