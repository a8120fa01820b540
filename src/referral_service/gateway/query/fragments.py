"""Plan → SQL text and parameters, from small named fragments.

Identifiers come from the schema cache and go through :func:`ident` (the one quoting function); every
value from the request is a bind parameter (``$n``). Values are sent as Python ``str``: psycopg binds a
``str`` with type OID 0 (*unknown*), so PostgreSQL infers the type from the column it meets, exactly as
PostgREST's unknown-typed parameters, and the SQL text does not depend on the values (prepared-statement hits).
"""

from __future__ import annotations

import functools

from ..grammar import Condition, Field, Filter, Logic
from ..plan import OutCol
from ..schema import Table

_CMP = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE",
        "ilike": "ILIKE", "match": "~", "imatch": "~*", "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<",
        "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-", "isdistinct": "IS DISTINCT FROM"}
_FTS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
        "wfts": "websearch_to_tsquery"}
_IS = {"null": "IS NULL", "not_null": "IS NOT NULL", "true": "IS TRUE", "false": "IS FALSE",
       "unknown": "IS UNKNOWN"}
RESULT_COLUMNS = "total, page_total, body, response_headers, response_status, extra"



@functools.lru_cache(maxsize=4096)  # the same few names every request; bounded (aliases come from clients)
def ident(name: str) -> str:
    """The one identifier-quoting function."""
    return '"' + name.replace('"', '""') + '"'


def literal_name(name: str) -> str:
    """A catalog name as a SQL string literal (only for names from the schema cache, never request data)."""
    return "'" + name.replace("'", "''") + "'"


class Params:
    def __init__(self) -> None:
        self.values: list[str | None] = []

    def add(self, value: str | None) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _array_literal(items: tuple[str, ...]) -> str:
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"


def column_expr(alias: str, table: Table, f: Field | OutCol, p: Params) -> str:
    name = f.name if isinstance(f, Field) else f.column
    expr = f"{ident(alias)}.{ident(name)}"
    if name not in table.columns and name in table.computed:
        # A computed field: its function called with the row, cast so overloads resolve on CTE rows too.
        row_type = f"{ident(table.schema)}.{ident(table.name)}"
        expr = f"{ident(table.computed[name])}.{ident(name)}({ident(alias)}::{row_type})"
    if f.path:
        col = table.columns.get(name)
        if col is None or not col.jsonish:
            expr = f"to_jsonb({expr})"
        for step in f.path:
            key = p.add(step.key) + ("::int" if step.key.lstrip("-").isdigit() else "::text")
            expr = f"{expr}{step.arrow}{key}"
    return expr


def condition(cond: Condition, alias: str, table: Table, p: Params) -> str:
    if isinstance(cond, Logic):
        joiner = " OR " if cond.op == "or" else " AND "
        inner = "(" + joiner.join(condition(c, alias, table, p) for c in cond.children) + ")"
        return f"NOT {inner}" if cond.negated else inner
    sql = _filter(cond, alias, table, p)
    return f"NOT ({sql})" if cond.negated else sql


def _filter(f: Filter, alias: str, table: Table, p: Params) -> str:
    lhs = column_expr(alias, table, f.field, p)
    op = f.op
    if op == "is":
        return f"{lhs} {_IS[f.value]}"  # type: ignore[index]
    if op == "in":
        return f"{lhs} = ANY({p.add(_array_literal(f.value))})"  # type: ignore[arg-type]
    if op in _FTS:
        col = table.columns.get(f.field.name)
        lang = p.add(f.lang) + "::regconfig, " if f.lang else ""
        if not (col and col.type == "tsvector" and not f.field.path):
            lhs = f"to_tsvector({lang}{lhs})"
        return f"{lhs} @@ {_FTS[op]}({lang}{p.add(str(f.value))})"
    value = str(f.value)
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    if f.quant:
        return f"{lhs} {_CMP[op]} {f.quant.upper()}({p.add(value)})"
    return f"{lhs} {_CMP[op]} {p.add(value)}"
