"""Plans of writes: POST, PATCH, PUT, DELETE on tables and views."""

from __future__ import annotations

import orjson

from .. import errors
from ..grammar import Field, Filter, SelectField
from ..request import ApiRequest
from ..schema import SchemaCache, Table
from .nodes import Mutation, Plan
from .read import _Aliases, _check_condition, _check_embed_paths, _column, _node


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
