"""ApiRequest + schema cache → Plan. Every identifier of the request is checked against the cache here."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import orjson

from . import errors
from .grammar import (
    Condition, Field, Filter, Logic, OrderTerm, SelectEmbed, SelectField, SelectItem, Star, parse_filter_value,
)
from .request import ApiRequest
from .schema import Column, Function, Relationship, SchemaCache, Table


@dataclass(slots=True)
class OutCol:
    column: str
    path: tuple
    key: str
    cast: str | None


@dataclass(slots=True)
class Embed:
    node: ReadNode
    key: str
    rel: Relationship
    inner: bool

    @property
    def to_one(self) -> bool:
        return self.rel.to_one


@dataclass(slots=True)
class ReadNode:
    table: Table
    alias: str
    select: list[OutCol | Embed]
    conditions: list[Condition] = field(default_factory=list)
    embed_nulls: list[tuple[Embed, bool]] = field(default_factory=list)  # (embed, must be null)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    join: Relationship | None = None  # how this node joins its parent
    parent_alias: str | None = None

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.select]


@dataclass(slots=True)
class Mutation:
    kind: str  # insert | update | delete | put
    columns: list[Column]
    body: str | None
    body_is_array: bool = False
    on_conflict: tuple[str, ...] | None = None
    resolution: str | None = None
    missing_default: bool = False
    conditions: list[Condition] = field(default_factory=list)


@dataclass(slots=True)
class Call:
    fn: Function
    body: str | None  # POST: JSON object of the given args
    args: list[tuple[str, str, str]]  # (name, type, raw value) for GET


@dataclass(slots=True)
class Plan:
    req: ApiRequest
    node: ReadNode
    read_only: bool
    mutation: Mutation | None = None
    call: Call | None = None
    offset: int = 0  # the root range lower bound, for Content-Range
    count: str | None = None


# --- helpers -------------------------------------------------------------------------------------------


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


def _pick_rel(cache: SchemaCache, schema: str, parent: Table, emb: SelectEmbed) -> Relationship:
    if (schema, emb.name) not in cache.tables:
        close = difflib.get_close_matches(emb.name, [n for s, n in cache.tables if s == schema], n=1)
        err = errors.no_relationship(parent.name, emb.name, schema, emb.hint)
        err.hint = f"Perhaps you meant '{close[0]}' instead of '{emb.name}'." if close else None
        raise err
    rels = cache.rels_between(schema, parent.name, emb.name)
    if emb.hint:
        rels = [r for r in rels if emb.hint in (r.name, *r.columns, *r.foreign_columns)]
    if not rels:
        raise errors.no_relationship(parent.name, emb.name, schema, emb.hint)
    if len(rels) > 1:
        details = [{
            "cardinality": "many-to-one" if r.to_one else "one-to-many",
            "embedding": f"{parent.name} with {emb.name}",
            "relationship": f"{r.name} using {parent.name if r.to_one else emb.name}"
                            f"({', '.join(r.columns if r.to_one else r.foreign_columns)}) and "
                            f"{emb.name if r.to_one else parent.name}"
                            f"({', '.join(r.foreign_columns if r.to_one else r.columns)})",
        } for r in rels]
        raise errors.ambiguous_relationship(emb.name, details, [f"{emb.name}!{r.name}" for r in rels])
    return rels[0]


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
            rel = _pick_rel(cache, table.schema, table, item)
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


# --- entry points --------------------------------------------------------------------------------------


def plan(req: ApiRequest, cache: SchemaCache, max_rows: int | None) -> Plan:
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


def _payload(req: ApiRequest) -> tuple[str, object]:
    if req.content_type not in ("application/json", "*/*", ""):
        if req.content_type == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            obj: object = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
            return orjson.dumps(obj).decode(), obj
        raise errors.invalid_body(f"Content-Type not acceptable: {req.content_type}")
    try:
        text = req.body.decode("utf-8")
        obj = orjson.loads(req.body) if req.body.strip() else None
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        raise errors.invalid_body("Empty or invalid json") from None
    return text, obj


def _plan_mutation(req: ApiRequest, cache: SchemaCache, table: Table) -> Plan:
    method = req.method
    if method == "DELETE":
        mut = Mutation("delete", [], None)
    else:
        text, obj = _payload(req)
        if obj is None and method != "PATCH":
            raise errors.invalid_body("Empty or invalid json")
        if obj is None:
            obj = {}
        if not isinstance(obj, (dict, list)):
            obj, text = [], "[]"  # a scalar JSON body is treated as an empty array, as PostgREST does
        rows = obj if isinstance(obj, list) else [obj]
        if any(not isinstance(r, dict) for r in rows):
            raise errors.invalid_body("All object keys must match")
        if req.columns is not None:
            names = list(dict.fromkeys(req.columns))
        else:
            names = list(rows[0]) if rows else []
            first = set(names)
            if any(set(r) != first for r in rows[1:]):
                raise errors.invalid_body("All object keys must match")
        cols = []
        for n in names:
            if n not in table.columns:
                raise errors.column_not_found(table.name, n)
            cols.append(table.columns[n])
        kind = {"POST": "insert", "PATCH": "update", "PUT": "put"}[method]
        mut = Mutation(kind, cols, text, isinstance(obj, list),
                       missing_default=req.prefer.missing == "default")
        if kind == "insert" and req.prefer.resolution:
            mut.resolution = req.prefer.resolution
            target = req.on_conflict or table.pk
            for c in target:
                _column(table, c)
            if target:
                mut.on_conflict = tuple(target)
            else:
                mut.resolution = None
        if kind == "put":
            _check_put(req, table, rows)
            mut.on_conflict = table.pk
    conds = req.conditions.get((), [])
    for cond in conds:
        _check_condition(table, cond)
    mut.conditions = list(conds) if mut.kind in ("update", "delete") else []
    if mut.kind == "put":
        mut.conditions = []
    # The representation is a read of the rows the statement returned.
    items = req.select
    if req.prefer.ret == "headers-only":
        items = tuple(SelectField(Field(c), None, None) for c in table.pk)
    scratch = ApiRequest(req.method, req.path, req.kind, req.name, req.schema, req.media, req.prefer,
                         conditions={k: v for k, v in req.conditions.items() if k}, order=req.order,
                         limits={k: v for k, v in req.limits.items() if k},
                         offsets={k: v for k, v in req.offsets.items() if k})
    node = _node(cache, scratch, table, table.name, items, (), _Aliases(), None)
    node.limit, node.offset = None, 0
    _check_embed_paths(scratch, node)
    return Plan(req, node, False, mutation=mut, count=req.prefer.count)


def _check_put(req: ApiRequest, table: Table, rows: list[dict]) -> None:
    if () in req.limits or () in req.offsets:
        raise errors.put_limit()
    conds = req.conditions.get((), [])
    pk = set(table.pk)
    eqs = {c.field.name: c.value for c in conds if isinstance(c, Filter) and c.op == "eq" and not c.negated
           and not c.field.path}
    if not pk or len(conds) != len(eqs) or set(eqs) != pk or len(rows) != 1:
        raise errors.invalid_put_filters()
    row = rows[0]
    for name, value in eqs.items():
        if name not in row or _textual(row[name]) != value:
            raise errors.put_mismatch()


def _textual(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


def _plan_call(req: ApiRequest, cache: SchemaCache, max_rows: int | None) -> Plan:
    fns = cache.functions_named(req.schema, req.name)
    if req.method not in ("GET", "HEAD", "POST"):
        raise errors.invalid_rpc_method(req.method)
    arg_names = {a.name for fn in fns for a in fn.args}
    if not fns:
        keys_all = sorted(k for k, _ in req.rpc_params) if req.method != "POST" else _post_keys(req)
        close = difflib.get_close_matches(req.name, [n for s, n in cache.functions if s == req.schema], n=1)
        hint = f"Perhaps you meant to call the function {req.schema}.{close[0]}" if close else None
        raise errors.function_not_found(req.schema, req.name, keys_all, hint)
    filters: list[Condition] = []
    get_args: dict[str, str] = {}
    body_text: str | None = None
    if req.method == "POST":
        text, obj = _payload(req)
        if obj is None:
            obj, text = {}, "{}"
        if not isinstance(obj, dict):
            raise errors.invalid_body("Empty or invalid json")
        keys = set(obj)
        body_text = text
        params = req.rpc_params
    else:
        keys = set()
        params = []
        for k, v in req.rpc_params:
            if k in arg_names:
                keys.add(k)
                get_args[k] = v
            else:
                params.append((k, v))
    for k, v in params:
        filters.append(parse_filter_value(k, v))
    matches = [fn for fn in fns if fn.required <= keys <= {a.name for a in fn.args}]
    if not matches:
        close = difflib.get_close_matches(req.name, [n for s, n in cache.functions if s == req.schema], n=1)
        hint = f"Perhaps you meant to call the function {req.schema}.{close[0]}" if close else None
        raise errors.function_not_found(req.schema, req.name, sorted(keys), hint)
    if len(matches) > 1:
        exact = [fn for fn in matches if {a.name for a in fn.args} == keys]
        if len(exact) != 1:
            raise errors.ambiguous_function(req.schema, req.name)
        matches = exact
    fn = matches[0]
    types = {a.name: a.type for a in fn.args}
    call = Call(fn, body_text, [(k, types[k], v) for k, v in get_args.items()])
    if fn.kind == "composite":
        table = _function_table(fn, cache)
        scratch_conds = dict(req.conditions)
        scratch_conds[()] = [*req.conditions.get((), []), *filters]
        req.conditions = scratch_conds
        node = _node(cache, req, table, fn.name, req.select, (), _Aliases(), max_rows)
        _check_embed_paths(req, node)
    else:
        if filters:
            _column(Table(fn.schema, fn.name, "f", {}), filters[0].field.name)
        node = ReadNode(Table(fn.schema, fn.name, "f", {}), fn.name, [OutCol("pgrst_scalar", (), "pgrst_scalar", None)])
        if fn.returns_set:
            node.limit = max_rows
    read_only = req.method in ("GET", "HEAD") or fn.volatility in ("s", "i")
    lo = _apply_range(req, node, max_rows) if fn.returns_set else 0
    return Plan(req, node, read_only, call=call, offset=lo, count=req.prefer.count)


def _post_keys(req: ApiRequest) -> list[str]:
    try:
        obj = orjson.loads(req.body) if req.body.strip() else {}
    except orjson.JSONDecodeError:
        return []
    return sorted(obj) if isinstance(obj, dict) else []
