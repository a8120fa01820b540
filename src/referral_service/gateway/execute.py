"""One transaction per request, sent in pipeline mode: one network round trip.

The set_config statement, the optional pre-request call and the main statement are queued together and
flushed with one Sync (libpq's pipeline with a single write, pipeline.py; psycopg's pipeline, which flushes at
every statement, only for EXPLAIN and bytes values, which need its adapters). Statements before a Sync run
in one implicit transaction, which commits at the Sync (or rolls back on the first error), so no BEGIN/COMMIT
is sent: that saves two of five statements, about 20 % of the client's CPU per request (measured). Read-only requests set `transaction_read_only` in the
set_config statement. Only when the outcome decides between COMMIT and ROLLBACK (singular responses and
``max-affected`` on writes) is an explicit BEGIN sent, and the end of the transaction after reading the result.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import AsyncRawCursor
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import errors, explain as explaining, pipeline
from .auth import Auth
from .plan import Plan
from .query import count_query, ident

log = logging.getLogger("referral_service.gateway")

_SET_CONFIG = (
    "select set_config('search_path', $1, true), set_config('role', $2, true), "
    "set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), "
    "set_config('request.path', $5, true), set_config('request.headers', $6, true), "
    "set_config('request.cookies', $7, true), set_config('request.client_address', $8, true)"
)
_SET_CONFIG_TZ = _SET_CONFIG + ", set_config('timezone', $9, true)"


@functools.lru_cache(maxsize=64)
def _with_role_settings(base: str, first: int, count: int) -> str:
    """``base`` plus ``count`` set_config calls taking name/value from $first on (the role's settings)."""
    return base + "".join(f", set_config(${first + 2 * i}, ${first + 2 * i + 1}, true)" for i in range(count))


@dataclass(slots=True)
class Result:
    total: int | None
    page_total: int
    body: str | bytes  # bytes: a media handler's bytea value, sent as it is
    response_headers: str | None
    response_status: str | None
    extra: int | None
    wal_lsn: str | None = None  # the primary's WAL position after this write's commit (read replicas: routing.py)


def tx_rollback(req: Any, db_tx_end: str) -> bool:
    """Does this request's transaction end in ROLLBACK? ``Prefer: tx=`` counts only where db-tx-end allows an
    override; elsewhere it is dropped (PostgREST neither honours nor echoes it, nor calls it invalid)."""
    if not db_tx_end.endswith("-allow-override"):
        req.prefer.tx = None
    if req.prefer.tx is not None:
        return req.prefer.tx == "rollback"
    return db_tx_end.startswith("rollback")


def pre_request_sql(name: str | None) -> str | None:
    if not name:
        return None
    parts = name.split(".")
    return "select " + ".".join(ident(p) for p in parts) + "()"


async def run(
    pool: AsyncConnectionPool, plan: Plan, auth: Auth, search_path: str, pre_request: str | None,
    must_decide: bool, role_settings: tuple[tuple[str, str], ...] = (), client_address: str = "",
    rollback: bool = False, wal_lsn: bool = False,
) -> tuple[Result, int | None, Pending | None]:
    """Run the plan; returns the result, a planned count (when asked) and, with ``must_decide``, the open
    transaction the caller must end with ``Pending.end``. ``role_settings`` (e.g. statement_timeout) are
    applied for this transaction, as PostgREST does for the impersonated role. ``client_address`` (the
    client as the rate limiter identified it, trusted proxies honoured) goes into ``request.client_address``,
    an addition of ours to PostgREST's request GUCs, for SQL that must tell visitors apart.

    ``rollback`` (db-tx-end / ``Prefer: tx=rollback``) ends the transaction with ROLLBACK in the same round trip,
    after ``SET CONSTRAINTS ALL IMMEDIATE`` so that deferred constraints still fail the request, as in
    PostgREST; the response is computed from what the statement returned. A request asking for its plan
    (``req.explain``) gets the EXPLAIN rows of the main statement as its body. ``wal_lsn`` (read replicas
    configured, a write) reads the WAL position after the commit on the same connection (routing.py)."""
    req = plan.req
    assert plan.statement is not None, "built with the plan (shapes.plan_with_cache)"
    sql, params = plan.statement
    if req.explain is not None:
        sql, must_decide = explaining.wrap(sql, req.explain), False
    if rollback:
        must_decide = False  # whatever the checks decide, nothing is kept
    gucs: list[str | None] = [
        search_path, auth.role, auth.claims_json, req.method, req.path,
        orjson.dumps(req.headers).decode(), orjson.dumps(req.cookies).decode(), client_address,
    ]
    set_config = _SET_CONFIG
    if req.prefer.timezone:
        gucs.append(req.prefer.timezone)
        set_config = _SET_CONFIG_TZ
    if role_settings:
        set_config = _with_role_settings(set_config, len(gucs) + 1, len(role_settings))
        for name, value in role_settings:
            gucs += (name, value)
    if plan.read_only:
        set_config += ", set_config('transaction_read_only', 'on', true)"
    planned = plan.count in ("planned", "estimated") and plan.mutation is None and plan.call is None \
        and req.explain is None
    _refuse_nul(gucs, params)  # before a connection is taken: nothing of this request may run
    try:
        conn = await pool.getconn()
    except PoolTimeout:
        raise errors.pool_timeout() from None
    except psycopg.OperationalError as exc:
        raise errors.connection_error(str(exc)) from None
    ok = False
    try:
        try:
            head = [pipeline.Statement("BEGIN ISOLATION LEVEL READ COMMITTED", prepare=False)] \
                if must_decide or rollback else []
            head.append(pipeline.Statement(set_config, gucs))
            if pre_request:
                head.append(pipeline.Statement(pre_request))
            count = count_query(plan) if planned else None
            if req.explain is None and all(v is None or isinstance(v, str) for v in params):
                row, plan_rows = await _run_libpq(conn, head, sql, params, rollback, count)
            else:  # EXPLAIN (its own loader) or a bytes value: psycopg's adapters
                row, plan_rows = await _run_psycopg(conn, req, head, sql, params, rollback, count)
            lsn = await _wal_lsn(conn) if wal_lsn and not must_decide and not rollback else None
        except psycopg.Error as exc:
            raise _classify(exc, conn, auth.authed) from None
        result = Result(row[0], row[1], row[2] or "", row[3], row[4], row[5], lsn)
        ok = True
        return result, plan_rows, Pending(pool, conn, auth.authed, wal_lsn) if must_decide else None
    finally:
        if not ok or not must_decide:
            await _release(pool, conn, rollback=not ok)


_TAIL_ROLLBACK = (pipeline.Statement("SET CONSTRAINTS ALL IMMEDIATE", prepare=False),
                  pipeline.Statement("ROLLBACK", prepare=False))
_BYTEA = 17


async def _run_libpq(conn: Any, head: list[pipeline.Statement], sql: str, params: list[str | None],
                     rollback: bool, count: tuple[str, list] | None) -> tuple[tuple, int | None]:
    """The usual path: libpq's pipeline with one flush (pipeline.py); the row as Python values."""
    stmts = [*head, pipeline.Statement(sql, params), *(_TAIL_ROLLBACK if rollback else ())]
    if count is not None:
        stmts.append(pipeline.Statement("EXPLAIN (FORMAT JSON) " + count[0], count[1]))
    results = await pipeline.exchange(conn, stmts, conn.prepare_threshold is not None)
    main = results[len(head)]
    if main.ntuples == 0:
        raise RuntimeError("the main statement returned no row")
    value = main.get_value
    body = value(0, 2) or b""
    if body and main.ftype(2) == _BYTEA:  # a media handler's bytea, in its text (hex) form
        body = bytes.fromhex(body[2:].decode())
    row = (_int(value(0, 0)), _int(value(0, 1)), body, _text(value(0, 3)), _text(value(0, 4)), _int(value(0, 5)))
    plan_rows = None
    if count is not None:
        doc = orjson.loads(results[-1].get_value(0, 0) or b"null")
        plan_rows = int(doc[0]["Plan"]["Plan Rows"]) if doc else None
    return row, plan_rows


def _int(v: bytes | None) -> int | None:
    return None if v is None else int(v)


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.decode()


async def _run_psycopg(conn: Any, req: Any, head: list[pipeline.Statement], sql: str, params: list,
                       rollback: bool, count: tuple[str, list] | None) -> tuple[tuple, int | None]:
    """psycopg's pipeline (one flush per statement) with its adapters: EXPLAIN's text, bytes values.

    Nothing on the pool's connections is prepared by psycopg (``prepare=False`` here, in Pending and for the
    WAL position): psycopg answers a ROLLBACK it sees with DEALLOCATE ALL when it holds prepared statements of
    its own, which would drop pipeline.py's too."""
    async with conn.pipeline() as pipe:
        cur = AsyncRawCursor(conn)
        for st in head:
            await cur.execute(st.sql, st.params, prepare=False)
        main = AsyncRawCursor(conn)
        if req.explain is not None:
            main.adapters.register_loader("json", TextLoader)  # PostgreSQL's own pretty-printed text
        await main.execute(sql, params, prepare=False)
        for st in _TAIL_ROLLBACK if rollback else ():
            await cur.execute(st.sql, prepare=False)
        explain = None
        if count is not None:
            explain = AsyncRawCursor(conn)
            await explain.execute("EXPLAIN (FORMAT JSON) " + count[0], count[1], prepare=False)
        await pipe.sync()
        if req.explain is not None:
            row = (None, 0, explaining.body(await main.fetchall()), None, None, None)
        else:
            row = await main.fetchone()
        plan_rows = None
        if explain is not None:
            ex = await explain.fetchone()
            doc = ex[0] if ex else None
            doc = orjson.loads(doc) if isinstance(doc, str) else doc
            plan_rows = int(doc[0]["Plan"]["Plan Rows"]) if doc else None
    if row is None:
        raise RuntimeError("the main statement returned no row")
    return row, plan_rows


def _refuse_nul(*groups: list) -> None:
    """PostgreSQL text cannot hold NUL. psycopg refuses such a value client-side, after the statements
    queued before it were sent; refuse the request first, with the error PostgreSQL gives (PostgREST's 400)."""
    for values in groups:
        for v in values:
            if isinstance(v, str) and "\x00" in v:
                raise errors.nul_in_value()


def _classify(exc: psycopg.Error, conn: Any, authed: bool) -> errors.ApiError:
    """Only a lost connection is a database outage (503, and the health flag goes down); anything the
    statement or its values caused is that request's own error."""
    if conn.closed or conn.broken:
        return errors.connection_error(str(exc))
    if exc.sqlstate is None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return errors.connection_error(str(exc))  # the link died mid-pipeline before psycopg marked it broken
    if exc.sqlstate is not None:
        return errors.from_pg(exc, authed)
    if isinstance(exc, psycopg.DataError):  # a value psycopg cannot send (e.g. NUL): the client's mistake
        return errors.nul_in_value()
    log.error("driver error without SQLSTATE on a healthy connection: %s", exc)
    return errors.internal()  # the gateway's own bug: logged, never an outage


class Pending:
    """A transaction whose outcome the response stage decides (singular, max-affected)."""

    def __init__(self, pool: AsyncConnectionPool, conn: Any, authed: bool, wal_lsn: bool = False) -> None:
        self._pool, self._conn, self._authed = pool, conn, authed
        self._want_lsn, self.wal_lsn = wal_lsn, None

    async def end(self, commit: bool) -> None:
        try:
            await self._conn.execute("COMMIT" if commit else "ROLLBACK", prepare=False)
            if commit and self._want_lsn:
                self.wal_lsn = await _wal_lsn(self._conn)
        except psycopg.Error as exc:
            await _release(self._pool, self._conn, rollback=True)
            raise _classify(exc, self._conn, self._authed) from None
        await _release(self._pool, self._conn, rollback=False)


async def _wal_lsn(conn: Any) -> str | None:
    """After the commit, so at least the end of its commit record (one more round trip, writes only)."""
    from .routing import LSN_SQL

    row = await (await conn.execute(LSN_SQL, prepare=False)).fetchone()
    return row[0] if row else None


async def _release(pool: AsyncConnectionPool, conn: Any, rollback: bool) -> None:
    if rollback and not conn.closed:
        try:
            await conn.rollback()
        except psycopg.Error:
            pass
    await pool.putconn(conn)
