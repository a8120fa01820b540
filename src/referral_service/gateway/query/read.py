"""SELECT of a read node and its embeds (lateral joins)."""

from __future__ import annotations

from ..plan import Embed, OutCol, ReadNode
from .fragments import Params, column_expr, condition, ident


def node_select(node: ReadNode, source: str, p: Params, for_count: bool = False) -> str:
    """``SELECT ... FROM source AS alias [joins] WHERE ... ORDER BY ... LIMIT ... OFFSET ...``."""
    a = ident(node.alias)
    cols: list[str] = []
    joins: list[str] = []
    where: list[str] = []
    if node.join is not None:
        r = node.join
        parent = ident(node.parent_alias or "")
        where.extend(f"{a}.{ident(fc)} = {parent}.{ident(c)}" for c, fc in zip(r.columns, r.foreign_columns))
    for item in node.select:
        if isinstance(item, OutCol):
            if for_count:
                continue
            expr = column_expr(node.alias, node.table, item, p)
            if item.cast:
                expr = f"CAST({expr} AS {item.cast})"
            cols.append(f"{expr} AS {ident(item.key)}")
        else:
            if for_count and not item.inner:
                continue
            _embed(item, p, cols, joins, for_count)
    for emb, is_null in node.embed_nulls:
        e = ident(emb.node.alias)
        target = f"row_to_json({e}.*)" if emb.to_one else f"{e}.{e}"
        where.append(f"{target} {'IS NULL' if is_null else 'IS NOT NULL'}")
        if not any(emb is s for s in node.select if isinstance(s, Embed)):
            continue
    where.extend(condition(c, node.alias, node.table, p) for c in node.conditions)
    sql = f"SELECT {', '.join(cols) or '1'} FROM {source} AS {a}"
    if joins:
        sql += " " + " ".join(joins)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if not for_count:
        if node.order:
            terms = []
            for t in node.order:
                term = column_expr(node.alias, node.table, t.field, p)
                if t.direction:
                    term += " " + t.direction.upper()
                if t.nulls:
                    term += " NULLS " + t.nulls.upper()
                terms.append(term)
            sql += " ORDER BY " + ", ".join(terms)
        if node.limit is not None:
            sql += f" LIMIT {p.add(str(node.limit))}"
        if node.offset:
            sql += f" OFFSET {p.add(str(node.offset))}"
    return sql


def _embed(emb: Embed, p: Params, cols: list[str], joins: list[str], for_count: bool) -> None:
    child = emb.node
    e = ident(child.alias)
    source = f"{ident(child.table.schema)}.{ident(child.table.name)}"
    inner_sql = node_select(child, source, p)
    if emb.to_one:
        if not for_count:
            cols.append(f"row_to_json({e}.*) AS {ident(emb.key)}")
        kind = "INNER" if emb.inner else "LEFT"
        joins.append(f"{kind} JOIN LATERAL ({inner_sql}) AS {e} ON TRUE")
    else:
        if not for_count:
            cols.append(f"COALESCE({e}.{e}, '[]') AS {ident(emb.key)}")
        agg = f"SELECT json_agg({e}) AS {e} FROM ({inner_sql}) AS {e}"
        on = f"{e}.{e} IS NOT NULL" if emb.inner else "TRUE"
        joins.append(f"{'INNER' if emb.inner else 'LEFT'} JOIN LATERAL ({agg}) AS {e} ON {on}")
