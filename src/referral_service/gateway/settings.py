"""Gateway settings: PostgREST's config file keys and ``PGRST_*`` environment variables (see :mod:`.sources`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .config_file import render
from .sources import SourceError, gather


class SettingsError(Exception):
    """A bad or missing setting; the message is one line meant for the operator."""


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PGRST_", extra="ignore", populate_by_name=True)

    db_uri: str = "postgresql://authenticator@127.0.0.1:5432/postgres"
    db_listen_uri: str | None = None  # direct connection for LISTEN/introspection when db_uri is a pooler
    db_schemas: str = Field("api", validation_alias=AliasChoices("PGRST_DB_SCHEMAS", "PGRST_DB_SCHEMA",
                                                                 "db_schemas"))
    db_anon_role: str | None = "anonymous"
    # None: anonymous requests only (a token gets 500 PGRST300, as PostgREST). A JWKS, a JWK or a plain secret.
    jwt_secret: str | None = None
    jwt_secret_is_base64: bool = False
    jwt_role_claim_key: str = Field(".role", validation_alias=AliasChoices(
        "PGRST_JWT_ROLE_CLAIM_KEY", "PGRST_ROLE_CLAIM_KEY", "jwt_role_claim_key"))
    jwt_aud: str | None = None
    db_max_rows: int | None = Field(None, ge=0)  # unset: no limit, as PostgREST
    db_pool: int = Field(10, ge=1)
    db_pool_acquisition_timeout: float = Field(10, gt=0)
    db_pre_request: str | None = None
    db_prepared_statements: bool = True
    db_extra_search_path: str = "public"
    db_channel: str = "pgrst"
    server_host: str = "127.0.0.1"
    server_port: int = Field(3000, ge=0, le=65535)
    server_cors_allowed_origins: str | None = None
    jwt_cache_seconds: float = 30.0
    # Gateway limits (not PostgREST settings): 413 / 414 beyond them; 0 turns one off.
    server_max_body_bytes: int = Field(1_048_576, ge=0)
    server_max_url_bytes: int = Field(8192, ge=0)
    # Request shapes whose plan and SQL the gateway keeps (gateway/shapes.py); 0 turns the cache off.
    server_shape_cache: int = Field(1024, ge=0)
    # For the anonymous role only: some functions run uninterruptibly on their input (the text search
    # parser ignores statement_timeout), so bound what an anonymous caller can hand them. 400 beyond.
    server_anon_max_value_length: int = Field(1000, ge=0)  # characters per query value / top-level RPC arg
    server_anon_max_body_bytes: int = Field(65536, ge=0)
    # The HTTP edge (not PostgREST settings; its warp server has similar fixed limits). 0 turns one off.
    # Beyond them: 431 before the app runs (headers), the connection closed (slow headers, too many connections).
    server_max_headers: int = Field(100, ge=0)  # header lines per request
    server_max_header_bytes: int = Field(16384, ge=0)  # names + values of one request's headers
    server_header_timeout: float = Field(10.0, ge=0)  # seconds from connection (or first byte) to full headers
    server_keep_alive_timeout: float = Field(30.0, gt=0)  # idle seconds between requests (PostgREST: ~30)
    server_max_connections: int = Field(1000, ge=0)  # open connections per worker process
    server_max_client_connections: int = Field(64, ge=0)  # open connections per client address, per worker
    # PostgREST's admin server (/live, /ready, /metrics). Unset: no admin server for the bare gateway;
    # `referral-service serve` defaults it to server-port + 1. Its host defaults to loopback, not server-host.
    admin_server_port: int | None = Field(None, ge=0, le=65535)
    admin_server_host: str = "127.0.0.1"
    # How each request's transaction ends (PostgREST's db-tx-end): commit | commit-allow-override | rollback |
    # rollback-allow-override; "-allow-override" honours `Prefer: tx=commit|rollback`.
    db_tx_end: str = "commit"
    db_plan_enabled: bool = False  # `Accept: application/vnd.pgrst.plan...` answers EXPLAIN output
    db_aggregates_enabled: bool = False  # count(), col.sum() ... in select; off by default, as in PostgREST
    # GET / : the OpenAPI document lists what the request's role may use (follow-privileges), everything
    # exposed (ignore-privileges), or is 404 PGRST126 (disabled). db-root-spec: a function answers GET / instead.
    openapi_mode: Literal["follow-privileges", "ignore-privileges", "disabled"] = "follow-privileges"
    openapi_server_proxy_uri: str | None = None  # the public URL in the document (scheme, host, basePath)
    db_root_spec: str | None = None
    # PostgREST's levels. Access lines: 5xx at error, 4xx at warn, the rest at info. PostgREST's default is
    # error; ours is info, so that every request is on the record (docs/deployment.md, "Logs").
    log_level: Literal["crit", "error", "warn", "info", "debug"] = "info"
    _notes: list[str] = PrivateAttr(default_factory=list)  # unknown/unsupported names, logged at start

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_others):  # noqa: ANN001,ANN003,ANN206
        return (init_settings,)  # load_settings gathers the file and the environment (sources.py)

    @field_validator("jwt_secret")
    @classmethod
    def _secret_form(cls, v: str | None) -> str | None:
        from .auth import SecretError, parse_secret

        try:
            parse_secret(v)  # a JWKS, a JWK, or a plain secret of at least 32 characters
        except SecretError as exc:
            raise ValueError(str(exc)) from None
        return v or None

    @field_validator("jwt_role_claim_key")
    @classmethod
    def _role_claim_key(cls, v: str) -> str:
        from .role_claim import RoleClaimKey

        RoleClaimKey.parse(v)
        return v

    @field_validator("db_anon_role", "db_pre_request", "db_listen_uri", "jwt_aud", "server_cors_allowed_origins",
                     "admin_server_port", "db_max_rows", "openapi_server_proxy_uri", "db_root_spec", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("db_tx_end")
    @classmethod
    def _tx_end(cls, v: str) -> str:
        if v not in ("commit", "commit-allow-override", "rollback", "rollback-allow-override"):
            raise ValueError("Invalid transaction termination. Check your configuration.")  # as PostgREST
        return v

    @property
    def tx_rollback(self) -> bool:
        return self.db_tx_end.startswith("rollback")

    @property
    def tx_override(self) -> bool:
        return self.db_tx_end.endswith("-allow-override")

    @field_validator("openapi_mode", "log_level", mode="before")
    @classmethod
    def _choice(cls, v: object, info: object) -> object:
        allowed = cls.model_fields[info.field_name].annotation.__args__  # type: ignore[attr-defined]
        if v not in allowed:  # PostgREST's messages
            what = "openapi-mode" if info.field_name == "openapi_mode" else "logging level"  # type: ignore[attr-defined]
            raise ValueError(f"Invalid {what}. Check your configuration.")
        return v

    @field_validator("openapi_server_proxy_uri")
    @classmethod
    def _proxy_uri(cls, v: str | None) -> str | None:
        if v is not None and not _good_proxy_uri(v):
            raise ValueError("Malformed proxy uri, a correct example: https://example.com:8443/basePath")
        return v

    @model_validator(mode="after")
    def _distinct_ports(self) -> GatewaySettings:
        if self.admin_server_port and self.admin_server_port == self.server_port:
            raise ValueError("PGRST_ADMIN_SERVER_PORT cannot be the same as PGRST_SERVER_PORT")  # as PostgREST
        return self

    @property
    def schemas(self) -> list[str]:
        return [s.strip() for s in self.db_schemas.split(",") if s.strip()]

    @property
    def cors_origins(self) -> list[str] | None:
        if not self.server_cors_allowed_origins:
            return None
        return [o.strip() for o in self.server_cors_allowed_origins.split(",") if o.strip()]


    @property
    def notes(self) -> list[str]:
        return list(self._notes)


def _good_proxy_uri(uri: str) -> bool:
    """PostgREST's rule: absolute http(s) with a host, no user info, no query, a port (if any) 1-65535."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc
            and not parts.query and not parts.fragment and (port is None or 1 <= port <= 65535))


def load_settings(config: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: object) -> GatewaySettings:
    """Config file (``config`` or ``PGRST_CONFIG``) < environment < ``overrides``; a problem becomes one
    :class:`SettingsError` line naming the variable or the file's key."""
    import os

    env = os.environ if env is None else env
    try:
        found = gather(GatewaySettings, env, config)
    except SourceError as exc:
        raise SettingsError(str(exc)) from None
    values = {**found.values, **overrides}
    try:
        settings = GatewaySettings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = found.origin.get(field) if field not in overrides else None
        name = name or ("PGRST_" + field.upper() if field else "PGRST_*")
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            msg = "is required"
        raise SettingsError(f"{name}: {msg}" if first["loc"] else msg) from None
    settings._notes = found.notes
    return settings


# every URI of a list (REFERRAL_DB_READ_URIS), and Redis URIs (REFERRAL_RATELIMIT_URL) too
_URI_PASSWORD = re.compile(r"((?:postgres(?:ql)?|rediss?)://[^:@/?#\s,]*:)([^@\s]*)(@)")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&]*)")
MASK = "***"


def mask(name: str, value: object) -> object:
    """``value`` of setting ``name`` safe to print: secrets replaced, passwords cut out of connection strings."""
    if value is None or value == "":
        return value
    if "secret" in name or "password" in name:
        return MASK
    if name.endswith(("_uri", "_uris", "_url")) and isinstance(value, str):
        value = _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", value)
        value = _KV_PASSWORD.sub(rf"\g<1>{MASK}", value)
        return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", value)
    return value


def dump(settings: BaseSettings, key_prefix: str = "") -> str:
    """Effective settings in the config file's syntax (PostgREST's ``--dump-config``), secrets masked;
    ``key_prefix`` for the service's own keys (``referral-``)."""
    lines = []
    for name in sorted(type(settings).model_fields):
        value = mask(name, getattr(settings, name))
        lines.append(f"{key_prefix}{name.replace('_', '-')} = {render(value)}")
    return "\n".join(lines) + "\n"
