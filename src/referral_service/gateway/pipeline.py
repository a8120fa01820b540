"""A request's statements on libpq's pipeline: queued together, flushed once, results read in one pass.

psycopg's pipeline mode flushes the socket and polls for results at every ``execute`` (one send and one
receive attempt per statement: four or five per request); here every statement is queued in libpq's buffer, the
Sync flushes them in one write, and the results are read as they arrive. Measured on W2 (one offer by id): the
gateway's CPU per request fell by about a fifth (bench/README.md). Values are sent as text of unknown type, as
psycopg sends ``str``; results come back as text, undecoded (the JSON body goes to the client as it is).

Prepared statements (``PGRST_DB_PREPARED_STATEMENTS``, off behind PgBouncer in transaction mode) are named
per connection, ``_rs_<n>``; a name is remembered only once its Parse succeeded, at most ``MAX_PREPARED`` per
connection (further shapes run unnamed), and forgotten with the connection.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from typing import Any

from psycopg import errors as e
from psycopg.pq import ExecStatus, PipelineStatus
from psycopg.waiting import Ready, Wait

MAX_PREPARED = 256
_names = itertools.count(1)
_prepared: weakref.WeakKeyDictionary[Any, dict[str, bytes]] = weakref.WeakKeyDictionary()
_FAILED = (ExecStatus.FATAL_ERROR, ExecStatus.PIPELINE_ABORTED, ExecStatus.BAD_RESPONSE)


class Statement:
    __slots__ = ("sql", "params", "prepare")

    def __init__(self, sql: str, params: Sequence[str | None] | None = None, prepare: bool = True) -> None:
        self.sql, self.params, self.prepare = sql, params, prepare


def forget(conn: Any) -> None:
    """Drop what is known to be prepared on ``conn`` (after DEALLOCATE or a schema change)."""
    _prepared.pop(conn, None)


async def exchange(conn: Any, statements: Sequence[Statement], prepare: bool) -> list[Any]:
    """Run ``statements`` in one implicit transaction (one Sync); returns each statement's last PGresult.

    Raises the psycopg error of the first statement that failed (the others were skipped by the server)."""
    pgconn = conn.pgconn
    names = _prepared.setdefault(conn, {}) if prepare else {}
    parsing: list[tuple[int, str, bytes]] = []  # (result index, sql, name) of the Parse steps queued
    mains: list[int] = []  # result index of each statement
    pgconn.enter_pipeline_mode()
    try:
        n = 0
        for st in statements:
            values = [None if v is None else v.encode() for v in st.params] if st.params else None
            name = names.get(st.sql) if prepare and st.prepare else None
            if name is None and prepare and st.prepare and len(names) < MAX_PREPARED:
                name = b"_rs_%d" % next(_names)
                pgconn.send_prepare(name, st.sql.encode())
                parsing.append((n, st.sql, name))
                n += 1
            if name is not None:
                pgconn.send_query_prepared(name, values)
            else:
                pgconn.send_query_params(st.sql.encode(), values)
            mains.append(n)
            n += 1
        pgconn.pipeline_sync()
        results = await conn.wait(_collect(pgconn))
    finally:
        if pgconn.pipeline_status != PipelineStatus.OFF:
            try:
                pgconn.exit_pipeline_mode()
            except e.OperationalError:
                pass  # a broken connection: the pool discards it
    for index, sql, name in parsing:
        if results[index].status == ExecStatus.COMMAND_OK:
            names[sql] = name
    for r in results:
        if r.status in _FAILED:
            failed = next((x for x in results if x.status == ExecStatus.FATAL_ERROR), r)
            error = e.error_from_result(failed, encoding="utf-8")
            if error.sqlstate == "26000":  # our statements were deallocated behind our back: prepare anew
                forget(conn)
            raise error
    return [results[i] for i in mains]


def _collect(pgconn: Any) -> Any:
    """Generator for ``conn.wait``: flush what is queued, then read results up to the Sync's."""
    while pgconn.flush() != 0:
        while not (ready := (yield Wait.RW)):
            continue
        if ready & Ready.R:
            pgconn.consume_input()
    out: list[Any] = []
    group: list[Any] = []
    while True:
        while not (yield Wait.R):
            continue
        pgconn.consume_input()
        while not pgconn.is_busy():
            r = pgconn.get_result()
            if r is None:
                if not group:
                    break
                out.append(group[-1])
                group = []
            elif r.status == ExecStatus.PIPELINE_SYNC:
                return out
            else:
                group.append(r)
