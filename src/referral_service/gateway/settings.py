"""Gateway settings from PostgREST's ``PGRST_*`` environment variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    db_max_rows: int | None = 1000
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
                     "admin_server_port", mode="before")
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


def load_settings(**overrides: object) -> GatewaySettings:
    """Read the environment; a problem becomes one :class:`SettingsError` line naming the variable."""
    try:
        return GatewaySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PGRST_" + str(first["loc"][0]).upper() if first["loc"] else "PGRST_*"
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            msg = "is required"
        raise SettingsError(f"{name}: {msg}" if first["loc"] else msg) from None
