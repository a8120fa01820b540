"""The ASGI application: wires the pipeline HTTP → ApiRequest → Plan → SQL → Result → Response,
and owns the lifespan (connection pool, schema cache, the ``LISTEN pgrst`` reloader)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from . import anonymous, errors, execute, explain, media, openapi, plan as planner, request, response, routing, schema
from . import target
from .query import main_statement
from .shapes import ShapeCache, Statement, plan_with_cache
from .auth import Authenticator
from .health import DbHealth, reports_connection_loss, tracked_connection_class
from .middleware.cors import CORSMiddleware
from .middleware.errors import ErrorMiddleware, send_error
from .middleware.limits import LimitsMiddleware
from .settings import GatewaySettings, load_settings

log = logging.getLogger("referral_service.gateway")

# psycopg_pool retries a lost connection with a delay doubling up to this long (default 300 s), and a slot stays
# taken meanwhile, so after a long outage requests queued behind slots whose next attempt was a minute away.
# DbHealth's probe owns recovery; the pool gives up quickly and grows again on demand.
RECONNECT_TIMEOUT = 2.0
CONNECT_TIMEOUT = 5  # seconds; bounds a connection attempt to an unreachable host
FIRST_LOAD_WAIT = 10.0  # seconds a starting worker waits for its schema cache before it accepts connections


class LifoPool(AsyncConnectionPool):
    """Hands out the connection returned last. psycopg_pool's queue is first-in first-out, so under light load
    every request woke another backend in turn (all ``PGRST_DB_POOL`` of them once a burst had grown the pool):
    PostgreSQL's CPU per request doubled (bench W2, one client: 183-217 µs with 10 connections in turn, 103-117
    µs with one), its caches cold each time. Last-in first-out keeps reusing the warm ones; the others stay idle
    and are closed after ``max_idle``, the oldest first, as before."""

    async def _get_ready_connection(self, timeout: float | None) -> Any:
        if len(self._pool) > 1:
            self._pool.rotate(1)  # the newest to the front, where the base class takes it; the rest keep their order
        return await super()._get_ready_connection(timeout)


class Gateway:
    """The core ASGI app: one catch-all route."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.schemas = settings.schemas
        self.auth = Authenticator.from_settings(settings)  # secret or JWKS, role claim key, audience, anon role
        self.pre_request = execute.pre_request_sql(settings.db_pre_request)
        self.pool: AsyncConnectionPool | None = None
        self.cache: schema.SchemaCache | None = None
        self.shapes = ShapeCache(0)  # plans per request shape for this schema cache (reload replaces both)
        self._loaded = asyncio.Event()  # set by the first schema load
        self.media: media.MediaCache | None = None  # media-type handlers, loaded with the schema cache
        self._tasks: list[asyncio.Task] = []
        self._direct_uri = settings.db_listen_uri or settings.db_uri
        self.on_reload: Callable[[], None] = lambda: None  # e.g. a metrics counter
        self.health = DbHealth(self._probe, self._check_pool)
        self.router: Any = None  # routing.ReadRouter when read replicas are configured (service.py)

    # --- lifespan ------------------------------------------------------------------------------------

    async def startup(self) -> None:
        s = self.settings
        _quiet_pool_log()
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT,
                                  "prepare_threshold": 1 if s.db_prepared_statements else None}
        self.pool = LifoPool(s.db_uri, min_size=1, max_size=s.db_pool, kwargs=kwargs,
                                        timeout=s.db_pool_acquisition_timeout, open=False,
                                        connection_class=tracked_connection_class(self.health),
                                        reconnect_timeout=RECONNECT_TIMEOUT)
        await self.pool.open(wait=False)
        if self.router is not None:
            await self.router.start()
        self._tasks.append(asyncio.create_task(self._listen()))
        await self._first_schema_load()

    async def _first_schema_load(self) -> None:
        """Wait (boundedly) for the schema cache before the server accepts connections. With several workers
        sharing one socket, a worker still loading answered 503 while a sibling's /ready already said 200 (seen
        by a test: the second request of a run got PGRST002); a worker that is not accepting yet takes no
        connections, so its siblings serve them. If the database is down, serving starts after the wait and
        answers 503 until the load succeeds, as before."""
        try:
            await asyncio.wait_for(self._loaded.wait(), FIRST_LOAD_WAIT)
        except asyncio.TimeoutError:
            log.warning("schema cache not loaded after %.0fs: serving 503 until it is", FIRST_LOAD_WAIT)

    async def shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.health.close()
        if self.router is not None:
            await self.router.close()
        if self.pool is not None:
            await self.pool.close()

    async def reload(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._direct_uri, autocommit=True) as conn:
            cache = await schema.load(conn, self.schemas)
            self.media = await media.load(conn, self.schemas)
            self.cache, self.shapes = cache, ShapeCache(self.settings.server_shape_cache)
        _freeze_long_lived()
        self._loaded.set()
        self.on_reload()
        log.info("schema cache loaded: %d relations", len(self.cache.tables))

    async def _probe(self) -> None:
        """Can a request get through? Connects the way the pool does (through PgBouncer when configured)."""
        async with await psycopg.AsyncConnection.connect(self.settings.db_uri, autocommit=True, connect_timeout=2,
                                                         prepare_threshold=None) as conn:
            await conn.execute("select 1")

    async def _check_pool(self) -> None:
        if self.pool is not None:
            await self.pool.check()  # replaces the dead idle connections and grows an empty pool

    async def _listen(self) -> None:
        """Load the cache, then reload it on NOTIFY; a direct connection (LISTEN can't go through a pooler)."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._direct_uri, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {self.settings.db_channel}")
                    await self.reload()  # (re)load after each (re)connect: we may have missed a NOTIFY
                    delay = 0.5
                    async for note in conn.notifies():
                        if note.payload in ("", "reload schema"):
                            await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving with the old cache; retry with backoff
                log.warning("schema cache / listener: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    # --- requests ------------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, headers, body = await self.handle(scope, receive)
        except errors.ClientDisconnected:
            return
        except errors.ApiError as err:
            await send_error(send, err, scope["method"] == "HEAD")
            return
        if scope["method"] != "HEAD" and status not in (204, 304):
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def resolve(self, scope: dict) -> target.Target | None:
        """The schema object this request addresses (None when unknown), remembered in the scope's state for
        the middleware around the gateway (rate limits, metrics labels)."""
        state = scope.setdefault("state", {})
        if "target" not in state:
            state["target"] = found = target.resolve(scope, self.schemas, self.cache)
            state["route"] = found.label if found else None
        return state["target"]

    async def handle(self, scope: dict, receive: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        method = scope["method"]
        self.resolve(scope)
        body = await _read_body(receive) if method in ("POST", "PATCH", "PUT") else b""
        path = openapi.root_path(target.request_path(scope), method, self.settings)  # db-root-spec
        req = request.build(method, path, scope["query_string"].decode("latin-1"),
                            scope["headers"], body, self.schemas, self.settings.db_plan_enabled)
        cache, shapes = self.cache, self.shapes  # together: the shapes were planned with this cache
        if cache is None:
            raise errors.schema_cache_not_ready()
        if method == "OPTIONS":
            return 200, openapi.options_headers(req, cache, self.settings.cors_origins is None), b""
        auth = self.auth.authenticate(req.headers.get("authorization"))
        state = scope.setdefault("state", {})
        state["role"] = auth.role  # for the access log (and the user id from the claims when authenticated)
        state["claims"] = auth.claims_json if auth.authed else None
        if req.kind == "root":
            if method not in ("GET", "HEAD"):
                raise errors.unsupported_method(method)
            doc = await openapi.answer(cache, req.schema, auth.role, self.settings, self.pool)
            return 200, [(b"content-type", b"application/openapi+json; charset=utf-8")], doc
        if auth.role not in cache.roles or not cache.roles[auth.role]:
            raise errors.role_refused(auth.role, auth.role in cache.roles)
        if not auth.authed:
            anonymous.check(req, self.settings.server_anon_max_value_length, self.settings.server_anon_max_body_bytes)
        plan = plan_with_cache(shapes, req, lambda r: self._plan(r, cache))
        rollback = execute.tx_rollback(req, self.settings.db_tx_end)
        decide = response.needs_decision(plan)
        search_path = request.search_path(req.schema, self.settings.db_extra_search_path)
        assert self.pool is not None
        if self.health.down:  # fail fast: the pool could only make us wait for the acquisition timeout
            raise self.health.error()
        try:
            def run(pool: AsyncConnectionPool, wal_lsn: bool = False) -> Any:
                return execute.run(pool, plan, auth, search_path, self.pre_request, decide,
                                   cache.role_settings.get(auth.role, ()), _client_address(scope), rollback, wal_lsn)

            routed = self.router.run(plan, req.headers, run) if self.router is not None else run(self.pool)
            res, planned, pending = await routed
        except errors.ApiError as err:
            if err.code == "PGRST003" and self.health.down:
                raise self.health.error() from None  # waited for a pool that lost its database meanwhile
            if reports_connection_loss(err):
                self.health.failed(err.details or err.message)
            raise
        if req.explain is not None:  # result checks, SQL-set headers and Preference-Applied do not apply
            return explain.response(req.explain, res.body, req.schema, self.schemas)  # type: ignore[arg-type]
        failure = response.check(plan, res)
        if pending is not None:
            await pending.end(commit=failure is None)
        if failure is not None:
            raise failure
        total = response.resolve_total(plan, res, planned, self.settings.db_max_rows)
        status, headers, body = response.build(plan, res, total, self.schemas)
        if self.router is not None:  # read your own writes: the commit's WAL position (routing.py)
            headers = [*headers, *routing.lsn_header(pending.wal_lsn if pending is not None else res.wal_lsn)]
        return status, headers, body

    def _plan(self, req: request.ApiRequest, cache: schema.SchemaCache) -> tuple[planner.Plan, Statement]:
        s = self.settings
        plan = planner.plan(req, cache, s.db_max_rows, s.db_aggregates_enabled)
        media.negotiate(plan, self.media, s.db_plan_enabled)
        return plan, main_statement(plan)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _freeze_long_lived() -> None:
    """Keep the schema cache and everything loaded so far out of the cyclic garbage collector's full passes.

    A full pass walks every tracked object: with the modules and the schema cache loaded, ~77k of them,
    10-40 ms during which no request is served (tail latency). Requests' garbage dies young (reference
    counts). Unfrozen and collected first, so that the previous schema cache is not kept forever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _quiet_pool_log() -> None:
    """psycopg_pool logs three INFO lines per request (connection requested, given, returned): three lines of
    noise per request at log level info, and a third of the gateway's CPU on a one-row read (bench W2, one
    worker: 415-469 µs per request with them, 290 µs without).
    Its warnings (broken connections) still pass; at log level debug everything does. Called at startup, after
    the server applied the logging configuration (which sets the library loggers to the configured level)."""
    pool_log = logging.getLogger("psycopg.pool")
    if pool_log.getEffectiveLevel() == logging.INFO:
        pool_log.setLevel(logging.WARNING)


def _client_address(scope: dict) -> str:
    """The client as the rate limiter resolved it (trusted proxies honoured), else the direct peer."""
    address = scope["state"].get("client_address")
    if address is None:
        address = (scope.get("client") or ("",))[0]
    return address


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.ClientDisconnected  # a truncated body must never be executed
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


Wrap = Callable[[Any], Any]


def create_app(settings: GatewaySettings | None = None, *, outer: Sequence[Wrap] = (),
               inner: Sequence[Wrap] = ()) -> Any:
    """The gateway as an ASGI app: errors → ``outer`` (e.g. metrics) → CORS → limits → ``inner`` (e.g. rate
    limit) → gateway. Each wrapper is ``lambda app: Middleware(app, ...)``, listed outermost first."""
    settings = settings or load_settings()
    core = Gateway(settings)
    app: Any = core
    for wrap in reversed(inner):
        app = wrap(app)
    app = LimitsMiddleware(app, settings.server_max_body_bytes, settings.server_max_url_bytes)
    app = CORSMiddleware(app, settings.cors_origins)
    for wrap in reversed(outer):
        app = wrap(app)
    app = ErrorMiddleware(app)  # outermost: also the one wrapper of send (middleware/errors.py)
    app.gateway = core  # handy for tests and the CLI (pool, cache)
    return app
