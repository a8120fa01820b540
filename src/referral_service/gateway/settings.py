"""Gateway settings from PostgREST's ``PGRST_*`` environment variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field, ValidationError, field_validator
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
    jwt_secret: str
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

    @field_validator("jwt_secret")
    @classmethod
    def _secret_length(cls, v: str) -> str:
        if len(v) < 32:
            raise ValueError("the JWT secret must be at least 32 characters long")
        return v

    @field_validator("db_anon_role", "db_pre_request", "db_listen_uri", "jwt_aud", "server_cors_allowed_origins", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

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
        raise SettingsError(f"{name}: {msg}") from None
