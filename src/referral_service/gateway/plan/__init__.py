"""ApiRequest + schema cache → Plan. Every identifier of the request is checked against the cache here.

One module per concept: ``nodes`` (the Plan's types), ``read`` (select trees, filters, order, ranges),
``embed`` (which relationship an embed names), ``mutation`` (writes), ``call`` (RPC).
"""

from __future__ import annotations

from .. import errors
from ..request import ApiRequest
from ..schema import SchemaCache, Table
from .call import _plan_call
from .mutation import _plan_mutation
from .nodes import Call, Embed, Mutation, OutCol, Plan, ReadNode
from .read import _Aliases, _apply_range, _check_embed_paths, _node
from .aggregate import check_aggregates

__all__ = ["Call", "Embed", "Mutation", "OutCol", "Plan", "ReadNode", "plan"]


def plan(req: ApiRequest, cache: SchemaCache, max_rows: int | None, aggregates: bool = False) -> Plan:
    """``aggregates``: PGRST_DB_AGGREGATES_ENABLED (off by default, as in PostgREST)."""
    p = _plan(req, cache, max_rows)
    check_aggregates(p.node, aggregates)
    return p


def _plan(req: ApiRequest, cache: SchemaCache, max_rows: int | None) -> Plan:
    if req.kind == "rpc":
        return _plan_call(req, cache, max_rows)
    table = cache.table(req.schema, req.name)
    if req.method in ("GET", "HEAD"):
        node = _node(cache, req, table, table.name, req.select, (), _Aliases(), max_rows)
        _check_embed_paths(req, node)
        lo = _apply_range(req, node, max_rows)
        return Plan(req, node, True, offset=lo, count=_count_kind(req.prefer.count, table))
    if req.method in ("PATCH", "DELETE") and (() in req.limits or () in req.offsets):
        raise errors.limited_mutation(req.method)
    return _plan_mutation(req, cache, table)


def _count_kind(asked: str | None, table: Table) -> str | None:
    """Planner estimates include rows RLS hides from the caller (probing filter values would reveal them):
    on such relations every count is exact. docs/security.md explains the choice."""
    if asked in ("planned", "estimated") and table.row_filtered:
        return "exact"
    return asked
