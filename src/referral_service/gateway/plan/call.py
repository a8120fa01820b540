"""Plans of function calls (``/rpc/...``)."""

from __future__ import annotations

import orjson

from .. import errors, rpc_forms
from ..grammar import Condition, parse_filter_value
from ..request import ApiRequest
from ..schema import Column, SchemaCache, Table
from .embed import closest
from .mutation import _payload
from .nodes import Call, OutCol, Plan
from .read import _Aliases, _apply_range, _check_embed_paths, _function_table, _node


def _plan_call(req: ApiRequest, cache: SchemaCache, max_rows: int | None) -> Plan:
    fns = [fn for fn in cache.functions_named(req.schema, req.name) if rpc_forms.visible(fn)]
    if req.method not in ("GET", "HEAD", "POST"):
        raise errors.invalid_rpc_method(req.method)
    arg_names = {a.name for fn in fns for a in fn.args}
    if not fns:
        keys_all = sorted(k for k, _ in req.rpc_params) if req.method != "POST" else _post_keys(req)
        hint = _hint(req, cache, fns, set(keys_all))
        if req.method == "POST" and req.content_type in rpc_forms.RAW_BODIES:
            raise errors.function_not_found_single(req.schema, req.name, rpc_forms.RAW_BODIES[req.content_type])
        json_post = req.method == "POST" and req.content_type in ("application/json", "*/*", "")
        raise errors.function_not_found(req.schema, req.name, keys_all, hint, json_post)
    filters: list[Condition] = []
    get_args: dict[str, str] = {}
    body_text: str | None = None
    raw: tuple | None = None  # (function, argument) of a single unnamed parameter
    json_post = req.method == "POST" and req.content_type in ("application/json", "*/*", "")
    if req.method == "POST" and req.content_type in rpc_forms.RAW_BODIES:
        raw = rpc_forms.raw_body(req.body, fns, req.content_type, req.schema, req.name)
        keys, params = set(), req.rpc_params
    elif req.method == "POST":
        text, obj = _payload(req)
        if obj is None:
            obj, text = {}, "{}"
        keys = set(obj) if isinstance(obj, dict) else set()
        if not isinstance(obj, dict):  # only a single unnamed json/jsonb parameter takes it
            raw = rpc_forms.json_fallback(fns, text, obj, req.schema, req.name)
            if raw is None:
                raise errors.invalid_body("Empty or invalid json")
        body_text = text
        params = req.rpc_params
    else:
        keys = set()
        params = []
        variadic = {a.name for fn in fns for a in fn.args if a.variadic}
        repeated: dict[str, list[str]] = {}
        for k, v in req.rpc_params:
            if k in arg_names:
                keys.add(k)
                get_args[k] = v  # a repeated key: the last value wins, except for a VARIADIC parameter
                repeated.setdefault(k, []).append(v)
            else:
                params.append((k, v))
        for k in variadic & set(repeated):
            get_args[k] = rpc_forms.pg_array(repeated[k])
    for k, v in params:
        filters.append(parse_filter_value(k, v))
    matches = [raw[0]] if raw else [fn for fn in fns if _fits(fn, keys)]
    if not matches and json_post:
        raw = rpc_forms.json_fallback(fns, body_text or "{}", obj, req.schema, req.name)
        matches = [raw[0]] if raw else []
    if not matches:
        raise errors.function_not_found(req.schema, req.name, sorted(keys), _hint(req, cache, fns, keys), json_post)
    if len(matches) > 1:  # PostgREST prefers none of them, not even the one whose names match exactly
        # listed by parameter types, as PostgREST v13 answered: `(a => integer), (a => text)`, `(), ( => text)`
        matches.sort(key=lambda f: [a.type for a in f.args])
        raise errors.ambiguous_function_between(", ".join(rpc_forms.signature(fn) for fn in matches))
    fn = matches[0]
    if raw is None and req.method == "POST" and rpc_forms.single(fn) is not None:
        raw = (fn, body_text or "{}")  # a single unnamed parameter matched by the key "": it takes the whole body
    types = {a.name: a.type for a in fn.args}
    if body_text is not None and raw is None:
        body_text = rpc_forms.variadic_body(fn, req.body, req.content_type, body_text)
    call = Call(fn, None if raw else body_text, [(k, types[k], v) for k, v in get_args.items()],
                raw[1] if raw else None)
    if fn.kind == "composite":
        table = _function_table(fn, cache)
        scratch_conds = dict(req.conditions)
        scratch_conds[()] = [*req.conditions.get((), []), *filters]
        req.conditions = scratch_conds
        node = _node(cache, req, table, fn.name, req.select, (), _Aliases(), max_rows)
        _check_embed_paths(req, node)
    else:
        # the one output column is `pgrst_scalar`: filters, order and select may name it (PostgREST's shape)
        table = Table(fn.schema, fn.name, "f", {"pgrst_scalar": Column("pgrst_scalar", fn.return_type, True, None)})
        req.conditions = {**req.conditions, (): [*req.conditions.get((), []), *filters]}
        node = _node(cache, req, table, fn.name, req.select, (), _Aliases(), max_rows)
        node.select = [OutCol("pgrst_scalar", (), "pgrst_scalar", None)]
        _check_embed_paths(req, node)
        if fn.returns_set:
            node.limit = max_rows
    read_only = req.method in ("GET", "HEAD") or fn.volatility in ("s", "i")
    lo = _apply_range(req, node, max_rows) if fn.returns_set else 0
    return Plan(req, node, read_only, call=call, offset=lo, count=req.prefer.count)


def _hint(req: ApiRequest, cache: SchemaCache, fns: list, keys: set[str]) -> str | None:
    """PostgREST's noRpcHint: with no function of that name, the closest name among the callable functions of
    the schema; with some, the closest of their parameter lists, written ``(a, b)`` sorted."""
    if not fns:
        names = sorted({n for (s, n), group in cache.functions.items()
                        if s == req.schema and any(rpc_forms.visible(f) for f in group)})
        best = closest(req.name, names)
        return f"Perhaps you meant to call the function {req.schema}.{best}" if best else None
    lists = sorted({"(" + ", ".join(sorted(a.name for a in fn.args)) + ")" for fn in fns})
    best = closest("(" + ", ".join(sorted(keys)) + ")", lists)
    return f"Perhaps you meant to call the function {req.schema}.{req.name}{best}" if best else None


def _fits(fn: object, keys: set[str]) -> bool:
    return fn.required <= keys <= {a.name for a in fn.args}  # type: ignore[attr-defined]


def _post_keys(req: ApiRequest) -> list[str]:
    try:
        obj = orjson.loads(req.body) if req.body.strip() else {}
    except orjson.JSONDecodeError:
        return []
    return sorted(obj) if isinstance(obj, dict) else []
