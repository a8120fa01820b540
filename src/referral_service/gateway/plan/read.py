"""Read nodes: the checked select tree, its filters, order and ranges (used by every plan kind)."""

from __future__ import annotations

from .. import errors
from ..grammar import Condition, Field, Filter, Logic, SelectItem, SelectField, Star
from ..request import ApiRequest
from ..schema import Column, Function, SchemaCache, Table
from .embed import pick_rel
from .nodes import Embed, OutCol, ReadNode


def _column(table: Table, name: str) -> Column:
    col = table.columns.get(name)
    if col is None:
        raise errors.undefined_column(table.name, name)
    return col


def _check_field(table: Table, f: Field) -> None:
    _column(table, f.name)


def _check_condition(table: Table, cond: Condition) -> None:
    if isinstance(cond, Logic):
        for c in cond.children:
            _check_condition(table, c)
    else:
        _check_field(table, cond.field)


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
    path: tuple[str, ...], aliases: _Aliases, max_rows: int | None,
) -> ReadNode:
    node = ReadNode(table, alias, [])
    embeds: dict[str, Embed] = {}
    for item in items:
        if isinstance(item, Star):
            node.select.extend(OutCol(c, (), c, None) for c in table.columns)
        elif isinstance(item, SelectField):
            _check_field(table, item.field)
            key = item.alias or _default_key(item.field)
            node.select.append(OutCol(item.field.name, item.field.path, key, item.cast))
        else:
            rel = pick_rel(cache, table.schema, table, item)
            child_table = cache.tables[(table.schema, item.name)]
            key = item.alias or item.name
            child = _node(cache, req, child_table, aliases.next(item.name), item.items, (*path, key), aliases,
                          max_rows)
            child.join, child.parent_alias = rel, alias
            emb = Embed(child, key, rel, item.inner)
            embeds[key] = emb
            node.select.append(emb)
    for cond in req.conditions.get(path, []):
        if isinstance(cond, Filter) and cond.field.name in embeds and not cond.field.path:
            if cond.op != "is" or cond.value not in ("null", "not_null"):
                raise errors.bad_embed_filter(cond.field.name)
            is_null = (cond.value == "null") != cond.negated
            node.embed_nulls.append((embeds[cond.field.name], is_null))
            continue
        _check_condition(table, cond)
        node.conditions.append(cond)
    node.order = req.order.get(path, ())
    for term in node.order:
        _check_field(table, term.field)
    limit = req.limits.get(path)
    node.limit = limit if max_rows is None else min(limit if limit is not None else max_rows, max_rows)
    node.offset = req.offsets.get(path, 0)
    return node


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
