"""Plan → SQL text and parameters, from small named fragments.

``fragments`` holds the one quoting function and the filter fragments; ``read`` the SELECT of a read node
with its embeds; ``write`` and ``call`` the CTE of mutations and RPC. This module assembles the one
statement whose single row the executor reads.
"""

from __future__ import annotations

from .. import media
from ..plan import Plan
from .call import _call_source
from .fragments import RESULT_COLUMNS, Params, ident, literal_name
from .read import node_select
from .write import _mutation_source

__all__ = ["RESULT_COLUMNS", "count_query", "ident", "literal_name", "main_statement", "node_select"]


def _body(plan: Plan) -> str:
    req = plan.req
    if req.method == "HEAD" or (plan.mutation is not None and req.prefer.ret not in ("representation",
                                                                                      "headers-only")):
        return "''"
    if plan.call is not None and plan.call.fn.kind == "void":
        return "''"
    if req.media.kind in ("geojson", "handler"):
        return media.body_sql(plan)
    agg = "json_agg(_postgrest_t)"
    scalar = plan.call is not None and plan.call.fn.kind == "scalar"
    if scalar:
        agg = "json_agg(_postgrest_t.pgrst_scalar)"
    if req.media.kind == "csv":
        return ("coalesce(string_agg(substring(_postgrest_t::text, 2, length(_postgrest_t::text) - 2), "
                "E'\\n'), '')")
    single = req.media.kind == "object" or (plan.call is not None and not plan.call.fn.returns_set)
    if req.media.stripped:
        agg = f"json_strip_nulls({agg})"
    if single:
        return f"coalesce(({agg})->0, 'null')::text"
    return f"coalesce({agg}, '[]')::text"


def _total(plan: Plan, source: str, p: Params) -> str:
    if plan.count in ("exact", "estimated") and plan.mutation is None:
        return f"(SELECT pg_catalog.count(*) FROM ({node_select(plan.node, source, p, True)}) _c)"
    if plan.mutation is not None and plan.count:
        return "pg_catalog.count(_postgrest_t)"
    return "null::bigint"


def count_query(plan: Plan) -> tuple[str, list[str | None]]:
    """For ``count=planned``: the filtered query the planner estimates."""
    p = Params()
    source = f"{ident(plan.node.table.schema)}.{ident(plan.node.table.name)}"
    return node_select(plan.node, source, p, True), p.values


def main_statement(plan: Plan) -> tuple[str, list[str | None]]:
    """The one statement whose single row is (total, page_total, body, headers, status, extra)."""
    p = Params()
    t = plan.node.table
    extra = "null::bigint"
    if plan.mutation is not None:
        cte = f"WITH pgrst_source AS ({_mutation_source(plan, p)}) "
        source = "pgrst_source"
        if plan.mutation.on_conflict is not None:
            extra = "(SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_inserted)"
    elif plan.call is not None:
        cte = f"WITH pgrst_source AS ({_call_source(plan, p)}) "
        source = "pgrst_source"
    else:
        cte = ""
        source = f"{ident(t.schema)}.{ident(t.name)}"
    total = _total(plan, source, p)
    inner = node_select(plan.node, source, p)
    sql = (f"{cte}SELECT {total} AS total, pg_catalog.count(_postgrest_t) AS page_total, {_body(plan)} AS body, "
           "nullif(current_setting('response.headers', true), '') AS response_headers, "
           "nullif(current_setting('response.status', true), '') AS response_status, "
           f"{extra} AS extra FROM ({inner}) _postgrest_t")
    return sql, p.values
