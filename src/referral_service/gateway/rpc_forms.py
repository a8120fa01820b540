"""The RPC argument forms beyond named JSON keys, as PostgREST v13 (its `Plan.hs` findProc / callPlan).

* **A single unnamed parameter** (``create function f(json)``) takes the whole POST body when no overload's
  named parameters match: ``json``/``jsonb`` for a JSON body; ``text``, ``xml``, ``bytea`` for a ``text/plain``,
  ``text/xml``, ``application/octet-stream`` body (those never go to named parameters, nor to a function
  without parameters). GET never uses it.
* **VARIADIC**: a repeated query key (GET, or a form-urlencoded POST) or a JSON array is the variadic array.
* Functions with an unnamed parameter of another type, or with two unnamed parameters, are invisible.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson

from . import errors
from .schema import Function

SINGLE = frozenset({"bytea", "json", "jsonb", "text", "xml"})
RAW_BODIES = {"text/plain": "text", "text/xml": "xml", "application/octet-stream": "bytea"}


def visible(fn: Function) -> bool:
    unnamed = [a for a in fn.args if not a.name]
    return not unnamed or (len(fn.args) == 1 and unnamed[0].type in SINGLE)


def single(fn: Function) -> str | None:
    """The type of a function's one unnamed parameter, if that is all it has."""
    return fn.args[0].type if len(fn.args) == 1 and not fn.args[0].name else None


def signature(fn: Function) -> str:
    """A candidate in PGRST203's message: ``schema.name(a => integer, b => text)``, `` => text`` unnamed."""
    return f"{fn.schema}.{fn.name}({', '.join(f'{a.name} => {a.type}' for a in fn.args)})"


def _pick(fns: list[Function], types: tuple[str, ...], schema: str, name: str) -> Function | None:
    found = [fn for fn in fns if single(fn) in types]
    if len(found) > 1:
        shown = ", ".join(signature(fn) for fn in found)
        raise errors.ambiguous_function_between(shown)
    return found[0] if found else None


def raw_body(body: bytes, fns: list[Function], content_type: str, schema: str, name: str) -> tuple[Function, str]:
    """A text/plain, text/xml or octet-stream POST: the function and its one argument (bytea as hex text)."""
    typ = RAW_BODIES[content_type]
    fn = _pick(fns, (typ,), schema, name)
    if fn is None:
        raise errors.function_not_found_single(schema, name, typ)
    if typ == "bytea":
        return fn, "\\x" + body.hex()
    try:
        return fn, body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid_body("The request body is not valid UTF-8") from None


def json_fallback(fns: list[Function], text: str, obj: object, schema: str, name: str) -> tuple[Function, str] | None:
    """When no named overload matched a JSON POST: the single unnamed json/jsonb function, with the body as
    its argument (a top-level scalar becomes ``[]``, as PostgREST does)."""
    fn = _pick(fns, ("json", "jsonb"), schema, name)
    if fn is None:
        return None
    if isinstance(obj, list):
        first = set(obj[0]) if obj and isinstance(obj[0], dict) else None
        if any(not isinstance(r, dict) or set(r) != first for r in obj):
            raise errors.invalid_body("All object keys must match")
    elif not isinstance(obj, dict):
        text = "[]"
    return fn, text


def variadic_body(fn: Function, req_body: bytes, content_type: str, text: str) -> str:
    """A form-urlencoded POST repeats the variadic key: gather its values into the JSON array it stands for."""
    names = {a.name for a in fn.args if a.variadic}
    if not names or content_type != "application/x-www-form-urlencoded":
        return text
    obj: dict[str, object] = {}
    for k, v in parse_qsl(req_body.decode("utf-8", "replace"), keep_blank_values=True):
        if k in names:
            obj.setdefault(k, [])
            obj[k].append(v)  # type: ignore[union-attr]
        else:
            obj[k] = v
    return orjson.dumps(obj).decode()


def pg_array(values: list[str]) -> str:
    """Repeated query values as a PostgreSQL array literal (a bound parameter, cast to the variadic type)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
