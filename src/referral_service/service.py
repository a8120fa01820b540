"""The referral service as deployed: the generic gateway plus what operations need around it.

    errors → access log → metrics → ops routes (admin port: /live /ready /metrics; API port: /live,
    /dashboard, /metrics for admins) → CORS → limits → per-client limits → gateway

The order puts the per-client limits inside CORS (a 429 still carries CORS headers) and keeps health checks,
metrics and the dashboard's static files outside them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import accounts
from . import logging as service_logging
from .dashboard import dashboard_app
from .gateway import errors
from .gateway.app import create_app
from .gateway.metrics import Metrics
from .gateway.middleware.accesslog import AccessLogMiddleware
from .gateway.middleware.metrics import MetricsMiddleware
from .gateway.middleware.ratelimit import RateLimitMiddleware
from .gateway.ratelimit import Rate, SharedLimiter, runtime_dir
from .gateway.ratelimit_redis import limiter_for
from .gateway.routing import router_for
from .gateway.server import run
from .gateway.settings import GatewaySettings, SettingsError, load_settings
from .gateway.sources import SourceError, service_keys

FACTORY = "referral_service.service:build"
METRICS_ROLES = frozenset({"app_admin"})  # JWT roles that may read /metrics on the API port (the dashboard)


class OpsSettings(BaseSettings):
    """Service settings beyond PostgREST's (prefix REFERRAL_)."""

    model_config = SettingsConfigDict(env_prefix="REFERRAL_", extra="ignore")

    rate_limit: str = "600/60"  # per client: requests/seconds; "0" turns it off
    auth_rate_limit: str = "10/60"  # per client address and target on the functions below
    # schema-qualified functions (or relations) that take credentials or tokens
    auth_rate_limit_targets: str = ("api.login,api.signup,api.refresh,api.change_password,"
                                    "api.request_password_reset,api.reset_password")
    client_max_in_flight: int = Field(4, ge=0)  # requests of one client at once, per worker; 0 = no cap
    # the pre-request function when PGRST_DB_PRE_REQUEST is unset; "" only for a database that is not this
    # service's (no sessions to check: e.g. the tests' foreign schemas)
    session_check: str = accounts.SESSION_CHECK
    trusted_proxies: str = ""  # comma-separated addresses/CIDRs whose X-Forwarded-For is believed
    ratelimit_file: str | None = None  # shared by the workers of one gateway; default: private folder, per port
    ops_metrics: bool = True  # export internal.ops_metrics() (cron failures, backups) on /metrics
    # read replicas (gateway/routing.py): postgresql:// URIs, whitespace- or comma-separated; empty = none
    db_read_uris: str = ""
    max_replica_lag: float = Field(1.0, gt=0)  # seconds; a replica further behind is skipped
    # shared limits for several gateway hosts (gateway/ratelimit_redis.py): redis://...; unset = this host only
    ratelimit_url: str | None = None
    ready_timeout: float = Field(2.0, gt=0)

    @field_validator("rate_limit", "auth_rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        Rate.parse(v)
        return v

    @field_validator("ratelimit_url", mode="before")
    @classmethod
    def _redis_url(cls, v: object) -> object:
        if isinstance(v, str) and v.strip() and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return v.strip() or None if isinstance(v, str) else v

    @field_validator("db_read_uris")
    @classmethod
    def _read_uris(cls, v: str) -> str:
        from .gateway.routing import split_uris

        split_uris(v)
        return v


def load_ops_settings() -> OpsSettings:
    """REFERRAL_* variables over the config file's referral-* keys (gateway/sources.py)."""
    try:
        return OpsSettings(**service_keys(OpsSettings, "REFERRAL_", os.environ))
    except SourceError as exc:
        raise SettingsError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(f"REFERRAL_{str(first['loc'][0]).upper()}: {first['msg'].removeprefix('Value error, ')}")


def configure_logging(level: str = "info") -> None:
    """One JSON object per line on stdout, for our records and the libraries' (referral_service/logging.py)."""
    service_logging.configure(level)


def build(settings: GatewaySettings | None = None) -> Any:
    settings = settings or load_settings()
    ops = load_ops_settings()
    if settings.db_pre_request is None and ops.session_check:
        # revocation: every request's session is checked in its own transaction (docs/security.md)
        settings = settings.model_copy(update={"db_pre_request": ops.session_check})
    general, strict = Rate.parse(ops.rate_limit), Rate.parse(ops.auth_rate_limit)
    configure_logging(settings.log_level)
    metrics = Metrics()
    limiter = limiter_for(ops.ratelimit_url, SharedLimiter(_ratelimit_table(settings, ops)), metrics)
    holder: dict[str, Any] = {}  # the core gateway, known once create_app has built it

    def identify(authorization: str) -> str | None:
        try:
            auth = holder["gateway"].auth.authenticate(authorization)
        except errors.ApiError:
            return None  # an invalid token is limited by address, like no token
        return orjson.loads(auth.claims_json).get("sub") if auth.authed else None

    async def before_scrape() -> None:
        gateway = holder["gateway"]
        if gateway.pool is not None:
            metrics.set_pool(gateway.pool.get_stats())
        if gateway.router is not None:
            metrics.set_replicas(gateway.router.states())
        metrics.set_ops(await _ops_gauges(gateway, ops) if ops.ops_metrics else {})

    app = create_app(
        settings,
        outer=[
            AccessLogMiddleware,
            lambda a: MetricsMiddleware(a, metrics, before_scrape),
            lambda a: ServiceRoutes(a, holder, ops.ready_timeout),
        ],
        inner=[
            lambda a: RateLimitMiddleware(
                a, limiter, general, strict, _names(ops.auth_rate_limit_targets), ops.trusted_proxies.split(","),
                identify, lambda scope: holder["gateway"].resolve(scope), ops.client_max_in_flight,
                lambda name: metrics.rate_limited.labels(name).inc()),
        ],
    )
    holder["gateway"] = app.gateway
    app.gateway.on_reload = metrics.schema_reloads.inc
    app.gateway.router = router_for(settings, ops.db_read_uris, ops.max_replica_lag, lambda: app.gateway.pool)
    if app.gateway.router is not None:
        app.gateway.router.routed = lambda target: metrics.db_reads.labels(target).inc()
    return app


def _ratelimit_table(settings: GatewaySettings, ops: OpsSettings) -> Path:
    """The rate-limit table all workers of this instance share (see gateway/ratelimit.py)."""
    if ops.ratelimit_file:
        return Path(ops.ratelimit_file)
    return runtime_dir() / f"ratelimit-{settings.server_port}"


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


async def _ops_gauges(gateway: Any, ops: OpsSettings) -> dict | None:
    """The database's operational gauges, or None when it cannot be reached."""
    if gateway.pool is None or gateway.health.down:  # known down: no need to wait for the pool to say so
        return None
    try:
        async with gateway.pool.connection(timeout=ops.ready_timeout) as conn:
            row = await (await conn.execute("select internal.ops_metrics()")).fetchone()
            return row[0]
    except Exception:  # noqa: BLE001 - any failure means "database not answering" for the gauge
        return None


class ServiceRoutes:
    """The operations routes, by socket.

    Admin socket (``PGRST_ADMIN_SERVER_PORT``, loopback by default), as PostgREST's admin server: ``/live``
    (the process answers), ``/ready`` (database reachable and schema cache loaded, else 503 with the reason),
    ``/metrics``; anything else 404. API socket: ``/live`` only (for load balancers: no details),
    ``/dashboard/``, and ``/metrics`` to a bearer token of a role in ``metrics_roles`` (the dashboard's
    service panel); everything else, ``/ready`` included, is the API's."""

    def __init__(self, app: Any, holder: dict[str, Any], timeout: float,
                 metrics_roles: frozenset[str] = METRICS_ROLES) -> None:
        self.app = app
        self.holder = holder
        self.timeout = timeout
        self.metrics_roles = metrics_roles

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, state = scope.get("path", ""), scope.setdefault("state", {})
        if self._on_admin_socket(scope):
            await self._admin(path, state, scope["method"] == "HEAD", send)
        elif path == "/live":
            state["route"] = path
            await _plain(send, 200, b"ok")
        elif path == "/dashboard" or path.startswith("/dashboard/"):
            state["route"] = "/dashboard"
            await dashboard_app(scope, receive, send)
        elif path == "/metrics" and "scrape" in state and self._may_read_metrics(scope):
            state["route"] = path
            await state["scrape"](send, scope["method"] == "HEAD")
        else:
            await self.app(scope, receive, send)

    async def _admin(self, path: str, state: dict, head: bool, send: Any) -> None:
        if path == "/live":
            state["route"] = path
            await _plain(send, 200, b"ok")
        elif path == "/ready":
            state["route"] = path
            problem = await self._not_ready()
            if problem:
                await _plain(send, 503, problem.encode(), [(b"retry-after", b"5")])
            else:
                await _plain(send, 200, b"ready")
        elif path == "/metrics" and "scrape" in state:
            state["route"] = path
            await state["scrape"](send, head)
        else:
            await _plain(send, 404, b"")

    def _on_admin_socket(self, scope: dict) -> bool:
        port = self.holder["gateway"].settings.admin_server_port
        server = scope.get("server")
        return port is not None and server is not None and server[1] == port

    def _may_read_metrics(self, scope: dict) -> bool:
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if authorization is None:
            return False
        try:
            auth = self.holder["gateway"].auth.authenticate(authorization.decode("latin-1"))
        except errors.ApiError:
            return False
        return auth.authed and auth.role in self.metrics_roles

    async def _not_ready(self) -> str | None:
        gateway = self.holder["gateway"]
        if gateway.cache is None:
            return "schema cache not loaded"
        if gateway.pool is None:
            return "no connection pool"
        if gateway.health.down:  # known down: say why at once instead of waiting for the pool
            return f"database unreachable: {gateway.health.reason}"
        try:
            async with gateway.pool.connection(timeout=self.timeout) as conn:
                await conn.execute("select 1")
        except Exception as exc:  # noqa: BLE001 - reported in the body, never raised
            return f"database unreachable: {type(exc).__name__}"
        return None


async def _plain(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] = ()) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(settings: GatewaySettings, workers: int) -> None:
    """Run the service; several workers share metrics through a multiprocess folder.

    The admin server (/live, /ready, /metrics) is always on for the service: on PGRST_ADMIN_SERVER_PORT, or
    the API port + 1 when unset, on PGRST_ADMIN_SERVER_HOST (127.0.0.1 unless set)."""
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="referral-metrics-")
    if settings.admin_server_port is None:
        port = settings.server_port + 1 if settings.server_port else 0
        settings = settings.model_copy(update={"admin_server_port": port})
    # run() logs "listening" with both addresses once the sockets are bound
    ops = load_ops_settings()
    proxies = tuple(p.strip() for p in ops.trusted_proxies.split(",") if p.strip())
    mail = None
    try:
        SharedLimiter(_ratelimit_table(settings, ops)).close()  # refuse an unsafe state file here, not per worker
        mail = _start_mailer()
        run(settings, workers=workers, factory=FACTORY, exempt_peers=proxies)
    except SettingsError as exc:
        print(f"referral-service: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if mail is not None:
            mail.close()


def _start_mailer() -> Any:
    """The mail delivery worker when REFERRAL_SMTP_URL is set: one thread in this (the parent) process, so one
    per host however many workers serve HTTP (several hosts share the queue through SKIP LOCKED claims)."""
    from .mailer import MailConfigError, start_in_background

    try:
        return start_in_background()
    except MailConfigError as exc:
        raise SettingsError(str(exc)) from None


def main() -> None:
    try:
        settings = load_settings()
        load_ops_settings()
    except SettingsError as exc:
        print(f"referral-service: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    serve(settings, int(os.environ.get("REFERRAL_WORKERS", "1")))


if __name__ == "__main__":
    main()
