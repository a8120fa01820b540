"""Read routing to streaming replicas (``REFERRAL_DB_READ_URIS``), with read-your-writes.

Which requests: GET/HEAD on tables and views, and GET/HEAD calls of STABLE or IMMUTABLE functions; everything
else (writes, volatile functions, POST calls, the OpenAPI document) runs on the primary. A property of the
plan and of the function's volatility in the schema cache: nothing here knows the app's schema.

Which replica: one that answered the last health check (every ``CHECK_INTERVAL`` s, on a connection of its
own) and lags at most ``max_lag`` seconds, round robin. The lag comes from the replica's replay position
against the primary's WAL position sampled at the same moment: 0 when it has replayed everything the primary
had written; otherwise the smaller of the age of its last replayed commit (``pg_last_xact_replay_timestamp()``)
and the time since the primary was at the position it has replayed (our samples), so that an idle primary's
old last commit does not count as lag. No replica fit: the primary serves the read. A replica that fails a
request (gone, pool exhausted, query cancelled by recovery) is marked down and the read runs again on the
primary: a read is safe to repeat, and no client sees an error because a replica went away.

Read your own writes: with replicas configured, each write response carries ``X-Referral-WAL-LSN``, the
primary's WAL insert position read right after the commit (on the same connection, so at least the end of
the commit record, whatever ``synchronous_commit`` says). A read that sends it back is served only by a
replica whose last checked replay position is at or past it, else by the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

from . import errors

log = logging.getLogger("referral_service.gateway")

WAL_HEADER = "x-referral-wal-lsn"
WAL_HEADER_BYTES = WAL_HEADER.encode()
LSN_SQL = "select pg_current_wal_insert_lsn()::text"
CHECK_INTERVAL = 0.25  # seconds between health/lag checks of each replica
CHECK_TIMEOUT = 1.0
REPLICA_POOL_TIMEOUT = 2.0  # a replica that cannot hand out a connection this fast: the primary serves
SAMPLES = 256  # primary WAL positions remembered (about a minute at CHECK_INTERVAL)
# errors after which the read is repeated on the primary: the replica (or its pooler) went away or is full,
# or recovery cancelled the query (a conflict with WAL replay: 40001; a deadlock with the startup process: 40P01)
_RETRY_CODES = frozenset({"PGRST000", "PGRST001", "PGRST003", "40001", "40P01"})
_LSN = re.compile(r"^\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*$")

_REPLICA_SQL = """
select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
       extract(epoch from now() - pg_last_xact_replay_timestamp())::float8
"""


def parse_lsn(text: str) -> int:
    """``16/B374D848`` → a number; a malformed value is the client's mistake (400)."""
    m = _LSN.match(text)
    if not m:
        raise errors.ApiError(400, "RS400", f"Invalid {WAL_HEADER} header",
                              f"expected a WAL position such as 0/16B3748 (as a write response sent it), "
                              f"got {text[:40]!r}")
    return (int(m[1], 16) << 32) | int(m[2], 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def split_uris(text: str) -> list[str]:
    """``REFERRAL_DB_READ_URIS``: URIs separated by whitespace or by commas before the next URI (a libpq URI may
    itself hold commas, in a host list)."""
    parts = re.split(r"\s*,\s*(?=postgres(?:ql)?://)|\s+", text.strip())
    uris = [p for p in parts if p]
    for uri in uris:
        if not uri.startswith(("postgres://", "postgresql://")):
            raise ValueError(f"each read URI must start with postgresql://, got {uri.split('@')[-1][:60]!r}")
    return uris


def label(uri: str) -> str:
    """host:port of a URI: its name in metrics and logs (never the password)."""
    try:
        parts = urlsplit(uri)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    except ValueError:
        return "replica"


@dataclass(eq=False)
class Replica:
    uri: str
    name: str
    pool: AsyncConnectionPool | None = None
    up: bool = False  # answered the last check as a server in recovery
    lag: float | None = None  # seconds behind the primary at the last check
    replay_lsn: int = 0
    reason: str = "not checked yet"
    _conn: Any = field(default=None, repr=False)


class ReadRouter:
    def __init__(self, uris: list[str], max_lag: float, primary: Callable[[], AsyncConnectionPool | None],
                 pool_kwargs: dict[str, Any], pool_size: int) -> None:
        self.replicas = [Replica(u, label(u)) for u in uris]
        self.max_lag = max_lag
        self._primary = primary
        self._pool_kwargs, self._pool_size = pool_kwargs, pool_size
        self._samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES)
        self._turn = itertools.count()
        self._task: asyncio.Task | None = None
        self.routed: Callable[[str], None] = lambda _target: None  # e.g. a metrics counter, per target

    # --- lifespan ------------------------------------------------------------------------------------

    async def start(self) -> None:
        for r in self.replicas:
            r.pool = AsyncConnectionPool(r.uri, min_size=1, max_size=self._pool_size, kwargs=self._pool_kwargs,
                                         timeout=REPLICA_POOL_TIMEOUT, open=False, reconnect_timeout=2.0,
                                         connection_class=_tracked(self, r), name=f"replica {r.name}")
            await r.pool.open(wait=False)
        self._task = asyncio.create_task(self._check_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for r in self.replicas:
            if r._conn is not None:
                with contextlib.suppress(Exception):
                    await r._conn.close()
            if r.pool is not None:
                await r.pool.close()

    # --- choosing ------------------------------------------------------------------------------------

    def pick(self, at_least: int = 0) -> Replica | None:
        """A replica fit to serve a read that must see WAL position ``at_least``; None: use the primary."""
        fit = [r for r in self.replicas if r.up and r.lag is not None and r.lag <= self.max_lag
               and r.replay_lsn >= at_least]
        if not fit:
            return None
        return fit[next(self._turn) % len(fit)]

    def failed(self, replica: Replica, reason: object) -> None:
        if replica.up:
            log.warning("replica %s skipped: %s", replica.name, _first_line(reason))
        replica.up, replica.reason = False, _first_line(reason)

    async def run(self, plan: Any, headers: dict[str, str], runner: Callable[[AsyncConnectionPool, bool],
                  Awaitable[Any]]) -> Any:
        """Run a request: a routable read on a replica (the primary when none fits, or when it fails), anything
        else on the primary, with the WAL position read after a write's commit."""
        primary = self._primary()
        if not routable(plan):
            return await runner(primary, not plan.read_only)
        raw = headers.get(WAL_HEADER)
        replica = self.pick(parse_lsn(raw) if raw else 0)
        if replica is None or replica.pool is None:
            self.routed("primary")
            return await runner(primary, False)
        try:
            result = await runner(replica.pool, False)
        except errors.ApiError as err:
            if err.code not in _RETRY_CODES and err.status != 503:
                raise  # the request's own error: the primary would say the same
            self.failed(replica, err.details or err.message)
            self.routed("primary")
            return await runner(primary, False)
        self.routed(replica.name)
        return result

    # --- health and lag ------------------------------------------------------------------------------

    async def _check_forever(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a check must never end the loop
                log.warning("replica check: %s", exc)
            await asyncio.sleep(CHECK_INTERVAL)

    async def check(self) -> None:
        """Sample the primary's WAL position, then ask each replica where it is."""
        primary_lsn = await self._primary_lsn()
        if primary_lsn is None:
            return  # the primary's own health is DbHealth's business; keep the last replica states
        now = time.monotonic()
        self._samples.append((now, primary_lsn))
        await asyncio.gather(*(self._check_one(r, primary_lsn, now) for r in self.replicas))

    async def _primary_lsn(self) -> int | None:
        pool = self._primary()
        if pool is None:
            return None
        try:
            async with pool.connection(timeout=CHECK_TIMEOUT) as conn:
                row = await (await conn.execute(LSN_SQL)).fetchone()
        except Exception:  # noqa: BLE001 - primary unreachable: nothing to compare against
            return None
        return parse_lsn(row[0]) if row and row[0] else None

    async def _check_one(self, r: Replica, primary_lsn: int, now: float) -> None:
        try:
            if r._conn is None or r._conn.closed:
                r._conn = await psycopg.AsyncConnection.connect(r.uri, autocommit=True, connect_timeout=2,
                                                                prepare_threshold=None)
            row = await asyncio.wait_for(_fetch(r._conn), CHECK_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - down, whatever the reason
            if r._conn is not None:
                with contextlib.suppress(Exception):
                    await r._conn.close()
                r._conn = None
            self.failed(r, exc)
            r.lag = None
            return
        in_recovery, replay, replay_age = row
        if not in_recovery or replay is None:
            self.failed(r, "not a streaming replica (promoted, or not in recovery)")
            r.lag = None
            return
        r.replay_lsn = parse_lsn(replay)
        r.lag = self._lag(r.replay_lsn, primary_lsn, replay_age, now)
        if not r.up:
            log.warning("replica %s serves reads (lag %.3f s)", r.name, r.lag)
        r.up, r.reason = True, ""
        if r.lag > self.max_lag:
            r.reason = f"lag {r.lag:.3f} s > {self.max_lag:g} s"

    def _lag(self, replay: int, primary_lsn: int, replay_age: float | None, now: float) -> float:
        if replay >= primary_lsn:
            return 0.0
        # the newest moment the primary was no further than what the replica has replayed
        covered = next((t for t, lsn in reversed(self._samples) if lsn <= replay), None)
        by_samples = now - covered if covered is not None else float("inf")
        by_commit = max(0.0, replay_age) if replay_age is not None else float("inf")
        lag = min(by_samples, by_commit)
        return lag if lag != float("inf") else self.max_lag + 1  # nothing to tell: treat as lagging

    def states(self) -> list[Replica]:
        return list(self.replicas)


def routable(plan: Any) -> bool:
    """GET/HEAD on relations, and GET/HEAD calls of STABLE/IMMUTABLE functions."""
    if not plan.read_only or plan.req.method not in ("GET", "HEAD") or plan.mutation is not None:
        return False
    return plan.call is None or plan.call.fn.volatility in ("s", "i")


def lsn_header(lsn: str | None) -> list[tuple[bytes, bytes]]:
    return [(WAL_HEADER_BYTES, lsn.encode())] if lsn else []


async def _fetch(conn: Any) -> tuple:
    return await (await conn.execute(_REPLICA_SQL)).fetchone()


def _tracked(router: ReadRouter, replica: Replica) -> type[psycopg.AsyncConnection]:
    """The replica pool's connection class: a failed connection attempt takes the replica out at once."""

    class ReplicaConnection(psycopg.AsyncConnection):
        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                return await super().connect(*args, **kwargs)
            except psycopg.OperationalError as exc:
                router.failed(replica, exc)
                raise

    return ReplicaConnection


def _first_line(reason: object) -> str:
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__



def router_for(settings: Any, read_uris: str, max_lag: float,
               primary: Callable[[], AsyncConnectionPool | None]) -> ReadRouter | None:
    """The router for ``REFERRAL_DB_READ_URIS`` (None when empty), its pools made like the primary's."""
    uris = split_uris(read_uris) if read_uris.strip() else []
    if not uris:
        return None
    kwargs = {"autocommit": True, "connect_timeout": 5,
              "prepare_threshold": 1 if settings.db_prepared_statements else None}
    return ReadRouter(uris, max_lag, primary, kwargs, settings.db_pool)
