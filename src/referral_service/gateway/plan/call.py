"""Plans of function calls (``/rpc/...``)."""

from __future__ import annotations

import difflib

import orjson

from .. import errors
from ..grammar import Condition, parse_filter_value
from ..request import ApiRequest
from ..schema import SchemaCache, Table
from .mutation import _payload
from .nodes import Call, OutCol, Plan, ReadNode
from .read import _Aliases, _apply_range, _check_embed_paths, _column, _function_table, _node


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
