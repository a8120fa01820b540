"""SELECT of a read node and its embeds (lateral joins), spreads and aggregates.

Shapes (PostgREST's, reference §2.11, §3, §4): a to-one embed is ``LEFT JOIN LATERAL (child) AS lateral``
rendered as ``row_to_json(lateral.*)``; a to-many one aggregates the child with ``json_agg``. A to-one spread
selects the child's columns from the lateral (applying the aggregates it hoisted); a to-many spread makes
one ``json_agg`` per column over the same rows, so the arrays stay aligned. A node with an aggregate
groups by every other output column (by position: the expressions carry bind parameters).
"""

from __future__ import annotations

from ..plan import Embed, OutCol, ReadNode
from ..plan.aggregate import groups
from ..plan.nodes import SpreadCol
from .fragments import Params, column_expr, condition, ident

Cols = list[tuple[str, bool]]  # (select item, is an aggregate)


def node_select(node: ReadNode, source: str, p: Params, for_count: bool = False) -> str:
    """``SELECT ... FROM source AS alias [joins] WHERE ... [GROUP BY] ORDER BY ... LIMIT ... OFFSET ...``."""
    a = ident(node.alias)
    cols: Cols = []
    joins: list[str] = []
    where: list[str] = []
    frm = f"{source} AS {a}"
    if node.join is not None:
        frm += _join(node, where)
    aggregating = not for_count and groups(node)
    needed = {id(emb) for emb, _ in node.embed_nulls}
    for item in node.select:
        if isinstance(item, OutCol):
            if not for_count:
                cols.append(_out_col(node, item, p))
        elif not for_count or item.inner or id(item) in needed:
            _embed(node, item, p, cols, joins, for_count, aggregating)
    for emb, is_null in node.embed_nulls:
        e = ident(emb.lateral)
        target = f"row_to_json({e}.*)" if emb.to_one else f"{e}.{e}"
        where.append(f"{target} {'IS NULL' if is_null else 'IS NOT NULL'}")
    where.extend(condition(c, node.alias, node.table, p) for c in node.conditions)
    sql = f"SELECT {', '.join(c for c, _ in cols) or '1'} FROM {frm}"
    if joins:
        sql += " " + " ".join(joins)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if for_count:
        return sql
    if aggregating:
        keys = [str(i) for i, (_, agg) in enumerate(cols, 1) if not agg]
        if keys:
            sql += " GROUP BY " + ", ".join(keys)
    if node.order:
        sql += " ORDER BY " + ", ".join(_order(node, t, p) for t in node.order)
    if node.limit is not None:
        sql += f" LIMIT {p.add(str(node.limit))}"
    if node.offset:
        sql += f" OFFSET {p.add(str(node.offset))}"
    return sql


def _join(node: ReadNode, where: list[str]) -> str:
    """The condition tying ``node`` to its parent row; for many-to-many, the junction joins the FROM."""
    r = node.join
    assert r is not None
    a, parent = ident(node.alias), ident(node.parent_alias or "")
    j = r.junction
    if j is None:
        where.extend(f"{a}.{ident(fc)} = {parent}.{ident(c)}" for c, fc in zip(r.columns, r.foreign_columns))
        return ""
    ja = ident(node.alias + "_junction")
    where.extend(f"{ja}.{ident(jc)} = {parent}.{ident(c)}" for jc, c in zip(j.columns1, r.columns))
    where.extend(f"{a}.{ident(fc)} = {ja}.{ident(jc)}" for fc, jc in zip(r.foreign_columns, j.columns2))
    return f", {ident(r.schema)}.{ident(j.table)} AS {ja}"


def _source(node: ReadNode) -> str:
    t = node.table
    r = node.join
    if r is not None and r.function is not None and node.parent_table is not None:
        pt = node.parent_table
        row = f"{ident(node.parent_alias or '')}::{ident(pt.schema)}.{ident(pt.name)}"
        return f"{ident(r.schema)}.{ident(r.function)}({row})"
    return f"{ident(t.schema)}.{ident(t.name)}"


def _aggregate(fn: str, expr: str, cast: str | None) -> str:
    out = f"pg_catalog.{fn}({expr})"
    return f"CAST({out} AS {cast})" if cast else out


def _out_col(node: ReadNode, item: OutCol, p: Params) -> tuple[str, bool]:
    if item.column == "*":  # count(): in a to-one spread, a marker the ancestor counts (null: no row)
        expr = "TRUE" if item.hoisted else "pg_catalog.count(*)"
    else:
        expr = column_expr(node.alias, node.table, item, p)
        if item.cast:
            expr = f"CAST({expr} AS {item.cast})"
    aggregated = bool(item.agg) and not item.hoisted
    if aggregated and item.column != "*":
        expr = _aggregate(item.agg or "", expr, None)
    if aggregated and item.agg_cast:
        expr = f"CAST({expr} AS {item.agg_cast})"
    return f"{expr} AS {ident(item.key)}", aggregated


def _spread_col(parent: ReadNode, e: str, c: SpreadCol) -> tuple[str, bool]:
    expr = f"{e}.{ident(c.key)}"
    if c.agg and not parent.hoists:  # the nearest non-spread ancestor applies what a to-one spread hoisted
        return f"{_aggregate(c.agg, expr, c.agg_cast)} AS {ident(c.key)}", True
    return f"{expr} AS {ident(c.key)}", False


def _embed(parent: ReadNode, emb: Embed, p: Params, cols: Cols, joins: list[str], for_count: bool,
           aggregating: bool) -> None:
    child = emb.node
    e = ident(emb.lateral)
    inner_sql = node_select(child, _source(child), p)
    jb = "::jsonb" if aggregating else ""  # json has no equality: grouped embeds go through jsonb
    kind = "INNER" if emb.inner else "LEFT"
    if emb.to_one:
        joins.append(f"{kind} JOIN LATERAL ({inner_sql}) AS {e} ON TRUE")
        if for_count:
            return
        if emb.spread:
            cols.extend(_spread_col(parent, e, c) for c in emb.columns)
        elif not emb.empty:
            cols.append((f"row_to_json({e}.*){jb} AS {ident(emb.key)}", False))
        return
    arrays = "".join(f", COALESCE(json_agg({e}.{ident(c.key)}), '[]'){jb} AS {ident(c.key)}"
                     for c in emb.columns) if emb.spread and not for_count else ""
    agg = f"SELECT json_agg({e}) AS {e}{arrays} FROM ({inner_sql}) AS {e}"
    on = f"{e}.{e} IS NOT NULL" if emb.inner else "TRUE"
    joins.append(f"{kind} JOIN LATERAL ({agg}) AS {e} ON {on}")
    if for_count:
        return
    if emb.spread:
        cols.extend((f"{e}.{ident(c.key)}", False) for c in emb.columns)
    elif not emb.empty:
        cols.append((f"COALESCE({e}.{e}, '[]'){jb} AS {ident(emb.key)}", False))


def _order(node: ReadNode, t, p: Params) -> str:
    if t.relation is not None:  # order=rel(col): the to-one embed's output column, through its lateral
        term = f"{ident(t.relation)}.{ident(t.field.name)}"
        if t.field.path:
            term = f"to_jsonb({term})"
            for step in t.field.path:
                key = p.add(step.key) + ("::int" if step.key.lstrip("-").isdigit() else "::text")
                term = f"{term}{step.arrow}{key}"
    else:
        term = column_expr(node.alias, node.table, t.field, p)
    if t.direction:
        term += " " + t.direction.upper()
    if t.nulls:
        term += " NULLS " + t.nulls.upper()
    return term
