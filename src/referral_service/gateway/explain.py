"""EXPLAIN of a request's main statement (``Accept: application/vnd.pgrst.plan[+text|+json]``, behind
``PGRST_DB_PLAN_ENABLED``), answered the way PostgREST does: status 200 for every verb, the plan rows each
followed by a newline, no Content-Range / Location / Preference-Applied, SQL-set response headers ignored."""

from __future__ import annotations

from .accept import Explain

Headers = list[tuple[bytes, bytes]]


def wrap(sql: str, ex: Explain) -> str:
    """``EXPLAIN (FORMAT ..., <options in EXPLAIN's order>) <statement>``; the options come from a fixed list."""
    opts = "".join(f", {o.upper()}" for o in ex.options)
    return f"EXPLAIN (FORMAT {ex.fmt.upper()}{opts}) {sql}"


def body(rows: list[tuple]) -> bytes:
    return "".join(f"{r[0]}\n" for r in rows).encode()


def response(ex: Explain, body_bytes: bytes, schema: str, schemas: list[str]) -> tuple[int, Headers, bytes]:
    headers: Headers = [(b"content-type", f"{ex.mime}; charset=utf-8".encode())]
    if len(schemas) > 1:
        headers.append((b"content-profile", schema.encode()))
    return 200, headers, body_bytes
