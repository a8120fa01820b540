"""Read nodes: the checked select tree, its filters, order and ranges (used by every plan kind)."""

from __future__ import annotations

from .. import errors
from ..grammar import Condition, Field, Filter, Logic, OrderTerm, SelectEmbed, SelectField, SelectItem, Star
from ..request import ApiRequest
from ..schema import Column, Function, SchemaCache, Table
from .embed import pick_rel, target_table
from .nodes import Embed, OutCol, ReadNode, SpreadCol


def _column(table: Table, name: str) -> Column:
    col = table.columns.get(name)
    if col is None:
        raise errors.undefined_column(table.name, name)
    return col


def _check_field(table: Table, f: Field, alias: str | None = None) -> None:
    """A column, a computed field, or ``count`` (PostgreSQL's functional notation makes ``t.count`` the
    row count, PostgREST's legacy ``select=count``). 42703 names the alias PostgREST's SQL uses."""
    name = f.name
    if name in table.columns or name in table.computed or (name == "count" and not f.path):
        return
    raise errors.undefined_column(alias or table.name, name)


def _check_condition(table: Table, cond: Condition, alias: str | None = None) -> None:
    if isinstance(cond, Logic):
        for c in cond.children:
            _check_condition(table, c, alias)
    else:
        _check_field(table, cond.field, alias)


def _function_table(fn: Function, cache: SchemaCache) -> Table:
    if fn.return_table and (fn.schema, fn.return_table) in cache.tables:
        return cache.tables[(fn.schema, fn.return_table)]
    return Table(fn.schema, fn.name, "f", {c.name: c for c in fn.out_columns})


class _Aliases:
    def __init__(self) -> None:
        self.n = 0

    def next(self, name: str) -> str:
        self.n += 1
        return f"{name}_{self.n}"


def _node(
    cache: SchemaCache, req: ApiRequest, table: Table, alias: str, items: tuple[SelectItem, ...],
    path: tuple[str, ...], aliases: _Aliases, max_rows: int | None, spread: str | None = None,
) -> ReadNode:
    """The read of ``table`` under ``alias`` at embed ``path``; ``spread`` is "one"/"many" for a spread."""
    node = ReadNode(table, alias, [], hoists=spread == "one")
    shown = alias if path else None  # 42703 at the root names the table (PostgREST's root is unaliased)
    cols: list[OutCol] = []
    embeds: list[Embed] = []
    by_key: dict[str, Embed] = {}
    for item in items:
        if isinstance(item, Star):
            cols.extend(OutCol(c, (), c, None) for c in table.columns)
        elif isinstance(item, SelectField):
            cols.append(_out_col(table, item, node.hoists, shown))
        else:
            emb = _embed(cache, req, node, item, path, aliases, max_rows)
            if any(e.lateral == emb.lateral for e in embeds):
                raise errors.duplicate_table(emb.lateral)
            embeds.append(emb)
            by_key.setdefault(emb.key, emb)
    node.select = [*cols, *embeds]  # PostgREST renders every plain column before the embeds
    for cond in req.conditions.get(path, []):
        # Only `rel=is.null` / `rel=not.is.null` address an embed; anything else filters a column.
        if isinstance(cond, Filter) and not cond.field.path and cond.field.name in by_key and cond.op == "is" \
                and cond.value == "null":
            node.embed_nulls.append((by_key[cond.field.name], not cond.negated))
            continue
        _check_condition(table, cond, shown)
        node.conditions.append(cond)
    node.order = tuple(_order_term(node, t, by_key, shown) for t in req.order.get(path, ()))
    limit = req.limits.get(path)
    node.limit = limit if max_rows is None else min(limit if limit is not None else max_rows, max_rows)
    node.offset = req.offsets.get(path, 0)
    return node


def _out_col(table: Table, item: SelectField, hoists: bool, shown: str | None) -> OutCol:
    if item.agg == "count" and item.field.name == "*":
        return OutCol("*", (), item.alias or "count", None, "count", item.agg_cast, hoists)
    _check_field(table, item.field, shown)
    key = item.alias or item.agg or _default_key(item.field)
    return OutCol(item.field.name, item.field.path, key, item.cast, item.agg, item.agg_cast,
                  hoists and item.agg is not None)


def _embed(cache: SchemaCache, req: ApiRequest, parent: ReadNode, item: SelectEmbed, path: tuple[str, ...],
           aliases: _Aliases, max_rows: int | None) -> Embed:
    rel = pick_rel(cache, parent.table.schema, parent.table, item)
    child_table = target_table(cache, rel)
    key = item.alias or item.name
    depth = len(path) + 1
    spread = None if not item.spread else "one" if rel.to_one else "many"
    child = _node(cache, req, child_table, f"{child_table.name}_{depth}", item.items, (*path, key), aliases,
                  max_rows, spread)
    child.join, child.parent_alias, child.parent_table = rel, parent.alias, parent.table
    emb = Embed(child, key, rel, item.inner, f"{parent.table.name}_{key}_{depth}", item.spread)
    if item.spread:
        emb.columns = spread_columns(child)
    else:
        emb.empty = _empty(child)
    return emb


def _empty(node: ReadNode) -> bool:
    """``rel()``, and embeds holding only such embeds: joined, but nothing to show (PostgREST 12.2.2+)."""
    return all(isinstance(s, Embed) and _empty(s.node) for s in node.select)


def spread_columns(node: ReadNode) -> list[SpreadCol]:
    """What a spread of ``node`` lifts into its parent, with the aggregates it hands up."""
    out: list[SpreadCol] = []
    for s in node.select:
        if isinstance(s, OutCol):
            out.append(SpreadCol(s.key, s.agg, s.agg_cast) if s.agg else SpreadCol(s.key))
        elif s.spread:
            out.extend(s.columns)
        elif not s.empty:
            out.append(SpreadCol(s.key))
    return out


def _order_term(node: ReadNode, term: OrderTerm, by_key: dict[str, Embed], shown: str | None) -> OrderTerm:
    if term.relation is None:
        _check_field(node.table, term.field, shown)
        return term
    emb = by_key.get(term.relation)
    if emb is None:
        raise errors.not_embedded(term.relation)
    if not emb.to_one:
        raise errors.related_order_not_to_one(node.table.name, emb.key)
    keys = [c.key for c in emb.columns] if emb.spread else emb.node.keys
    if term.field.name not in keys:
        raise errors.undefined_column(emb.lateral, term.field.name)
    return OrderTerm(term.field, term.direction, term.nulls, emb.lateral)


def _default_key(f: Field) -> str:
    for step in reversed(f.path):
        if not step.key.lstrip("-").isdigit():
            return step.key
    return f.name


def _check_embed_paths(req: ApiRequest, root: ReadNode) -> None:
    known: set[tuple[str, ...]] = {()}

    def walk(node: ReadNode, path: tuple[str, ...]) -> None:
        for s in node.select:
            if isinstance(s, Embed):
                known.add((*path, s.key))
                walk(s.node, (*path, s.key))

    walk(root, ())
    for mapping in (req.conditions, req.order, req.limits, req.offsets):
        for path in mapping:
            if path not in known:
                raise errors.not_embedded(".".join(path))


def _apply_range(req: ApiRequest, node: ReadNode, max_rows: int | None) -> int:
    """Intersect limit/offset with the Range header; returns the lower bound."""
    lo, hi = node.offset, None
    limit = req.limits.get(())
    if limit is not None:
        hi = lo + limit - 1
    if req.range is not None:
        rlo, rhi = req.range
        lo = max(lo, rlo)
        if rhi is not None:
            hi = rhi if hi is None else min(hi, rhi)
    node.offset = lo
    if hi is not None:
        node.limit = max(hi - lo + 1, 0)
    if max_rows is not None:
        node.limit = max_rows if node.limit is None else min(node.limit, max_rows)
    return lo
