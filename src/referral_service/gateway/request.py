"""HTTP → ApiRequest: what the client asked for, with no database knowledge."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

from . import errors
from .accept import Explain, Media
from .accept import builtin as _builtin
from .accept import negotiate as _negotiate
from .accept import parse as _parse_accept
from .grammar import (
    BOUND_AS_WRITTEN, Condition, Filter, Logic, OrderTerm, SelectItem, Star, parse_filter_value, parse_logic,
    parse_nonneg_int, parse_order, parse_select,
)

RESERVED = frozenset({"select", "columns", "on_conflict", "order", "limit", "offset", "and", "or", "not.and",
                      "not.or"})
METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"})
_RANGE_RE = re.compile(r"^(\d{1,18})-(\d{0,18})$")
EmbedPath = tuple[str, ...]


# The select and order of a client's requests repeat; their trees are immutable, so one parse serves all.
# Bounded: distinct texts beyond it are parsed again (errors are never cached).
_select_tree = lru_cache(maxsize=512)(parse_select)
_order_terms = lru_cache(maxsize=512)(parse_order)


@lru_cache(maxsize=64)
def search_path(schema: str, extra: str) -> str:
    """The request's search_path: its schema, then each of PGRST_DB_EXTRA_SEARCH_PATH's comma-separated schemas,
    every name quoted on its own (as PostgREST; one quoted "public,extensions" would name no schema)."""
    names = [schema, *(s.strip() for s in extra.split(","))]
    return ", ".join('"' + n.replace('"', '""') + '"' for n in names if n)


@dataclass(slots=True)
class Preferences:
    ret: str | None = None  # minimal | headers-only | representation
    count: str | None = None  # exact | planned | estimated
    resolution: str | None = None  # merge-duplicates | ignore-duplicates
    missing: str | None = None  # default | null
    handling: str | None = None  # strict | lenient
    max_affected: int | None = None
    tx: str | None = None
    timezone: str | None = None
    invalid: list[str] = field(default_factory=list)



@dataclass(slots=True)
class ApiRequest:
    method: str
    path: str
    kind: str  # root | relation | rpc
    name: str
    schema: str
    media: Media
    prefer: Preferences
    select: tuple[SelectItem, ...] = (Star(),)
    conditions: dict[EmbedPath, list[Condition]] = field(default_factory=dict)
    order: dict[EmbedPath, tuple[OrderTerm, ...]] = field(default_factory=dict)
    limits: dict[EmbedPath, int] = field(default_factory=dict)
    offsets: dict[EmbedPath, int] = field(default_factory=dict)
    range: tuple[int, int | None] | None = None  # from the Range header (GET only)
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    rpc_params: list[tuple[str, str]] = field(default_factory=list)  # raw, for RPC args vs filters
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    query_sorted: str = ""
    longest_value: int = 0  # characters of the longest query-string value (anonymous callers are capped)
    accept: tuple[Media, ...] = ()  # what Accept asked for, best first (handlers choose later)
    explain: Explain | None = None  # Accept: application/vnd.pgrst.plan...: answer the query's EXPLAIN
    # The query string without the values that are only bound as parameters (shapes.py), and those filters
    # in the order of the query string: requests of one shape get one plan and one SQL text.
    query_shape: tuple = ()
    slots: list[Filter] = field(default_factory=list)


def parse_prefer(values: list[str]) -> Preferences:
    p = Preferences()
    for raw in values:
        for token in raw.split(","):
            token = token.strip()
            if not token:
                continue
            key, _, val = token.partition("=")
            key, val = key.strip(), val.strip()
            if key == "return" and val in ("minimal", "headers-only", "representation"):
                p.ret = val
            elif key == "count" and val in ("exact", "planned", "estimated"):
                p.count = val
            elif key == "resolution" and val in ("merge-duplicates", "ignore-duplicates"):
                p.resolution = val
            elif key == "missing" and val in ("default", "null"):
                p.missing = val
            elif key == "handling" and val in ("strict", "lenient"):
                p.handling = val
            elif key == "max-affected" and val.isdigit():
                p.max_affected = int(val)
            elif key == "tx" and val in ("commit", "rollback"):
                p.tx = val
            elif key == "timezone" and val:
                p.timezone = val
            else:
                p.invalid.append(token)
    if p.handling == "strict" and p.invalid:
        raise errors.strict_preferences(p.invalid)
    return p


def parse_accept(value: str | None, kind: str, plan_enabled: bool = False) -> Media:
    """The first builtin representation Accept allows (406 PGRST107 when none)."""
    asked = _parse_accept(value)
    found = first_builtin(asked, kind, plan_enabled)
    if found is None:
        raise errors.unacceptable_media([m.mime for m in asked])
    return found


def first_builtin(asked: list[Media], kind: str, plan_enabled: bool = False) -> Media | None:
    for m in asked:
        found = _builtin(m, kind, plan_enabled)
        if found is not None:
            return found
    return None


def parse_range(value: str | None) -> tuple[int, int | None] | None:
    if not value:
        return None
    value = value.strip()
    if "=" in value:  # "items=0-9" is how some clients spell it
        value = value.split("=", 1)[1]
    m = _RANGE_RE.match(value)
    if not m:
        return None  # a malformed header is ignored, as PostgREST does
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else None
    if hi is not None and lo > hi:
        raise errors.invalid_range("The lower boundary must be lower than or equal to the upper boundary in the "
                                   "Range header.")
    return lo, hi


def _split_key(key: str) -> tuple[EmbedPath, str]:
    """``a.b.col`` → ((a, b), col); dots inside a JSON path (after ``->``) are not separators."""
    head, arrow, tail = key.partition("->")
    parts = head.split(".")
    last = parts[-1] + arrow + tail
    if len(parts) >= 2 and parts[-2] == "not" and parts[-1] in ("or", "and") and not arrow:
        return tuple(parts[:-2]), "not." + parts[-1]
    return tuple(parts[:-1]), last


def _cols(value: str) -> tuple[str, ...]:
    out = []
    for c in value.split(","):
        c = c.strip()
        if len(c) >= 2 and c[0] == c[-1] == '"':
            c = c[1:-1]
        if c:
            out.append(c)
    return tuple(out)


def parse_target(path: str) -> tuple[str, str]:
    segments = [unquote(s) for s in path.split("/")[1:]]
    if segments and segments[-1] == "" and len(segments) > 1:
        segments = segments[:-1]
    if segments == [""] or not segments:
        return "root", ""
    if len(segments) == 1 and segments[0]:
        return "relation", segments[0]
    if len(segments) == 2 and segments[0] == "rpc" and segments[1]:
        return "rpc", segments[1]
    raise errors.invalid_path()


def parse_query(req: ApiRequest, query: str) -> None:
    """Fill the query-string parts of ``req``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    req.query_sorted = "&".join(f"{k}={v}" for k, v in sorted(pairs))  # for Content-Location
    req.longest_value = max((len(v) for _, v in pairs), default=0)
    shape: list[tuple] = []
    for key, value in pairs:
        path, last = _split_key(key)
        shape.append((key, value))
        if key == "select":
            req.select = _select_tree(value) if value.strip() else (Star(),)
        elif key == "columns":
            req.columns = _cols(value)
        elif key == "on_conflict":
            req.on_conflict = _cols(value)
        elif last == "order":
            req.order[path] = _order_terms(value) if value else ()
        elif last == "limit":
            req.limits[path] = parse_nonneg_int(value, "limit")
        elif last == "offset":
            req.offsets[path] = parse_nonneg_int(value, "offset")
        elif last in ("or", "and", "not.or", "not.and"):
            negated = last.startswith("not.")
            cond = parse_logic(last.removeprefix("not."), negated, value)
            req.conditions.setdefault(path, []).append(cond)
        elif req.kind == "rpc" and not path:
            req.rpc_params.append((key, value))  # arguments or filters: decided against the function
        else:
            flt = parse_filter_value(last, value)
            req.conditions.setdefault(path, []).append(flt)
            if flt.op in BOUND_AS_WRITTEN and flt.quant is None and flt.lang is None:
                shape[-1] = (key, flt.negated, flt.op)  # the value is left out: a parameter, nothing else
                req.slots.append(flt)
    req.query_shape = tuple(shape)


def build(
    method: str, path: str, query: str, headers: list[tuple[bytes, bytes]], body: bytes, schemas: list[str],
    plan_enabled: bool = False,
) -> ApiRequest:
    """Parse an HTTP request; raises an :class:`ApiError` for anything malformed."""
    if method not in METHODS:
        raise errors.unsupported_method(method)
    values: dict[str, list[str]] = {}
    for k, v in headers:  # collect, then join once: linear in the number of repeated headers
        values.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
    prefer = values.get("prefer", [])
    hdrs = {name: vs[-1] if name == "cookie" else ", ".join(vs) for name, vs in values.items()}
    kind, name = parse_target(path)
    schema = schemas[0]
    profile = hdrs.get("accept-profile" if method in ("GET", "HEAD") else "content-profile")
    if profile is not None:
        if profile not in schemas:
            raise errors.unacceptable_schema(profile, schemas)
        schema = profile
    req = ApiRequest(method, path, kind, name, schema, Media("json"), parse_prefer(prefer), body=body)
    if method != "OPTIONS":
        asked, found = _negotiate(hdrs.get("accept"), kind, plan_enabled)
        req.accept = asked
        if found is None and kind == "root":
            raise errors.unacceptable_media([m.mime for m in req.accept])
        # none: only a custom media handler can serve it (media.negotiate decides, or answers 406)
        req.media = found or Media("other", mime=req.accept[0].mime)
        if req.media.kind == "plan" and req.media.explain is not None:
            req.explain, req.media = req.media.explain, req.media.explain.target
    req.content_type = hdrs.get("content-type", "application/json").split(";")[0].strip().lower()
    if method == "GET":
        req.range = parse_range(hdrs.get("range"))
    cookie = hdrs.pop("cookie", None)
    if cookie:
        for part in cookie.split(";"):
            ck, eq, cv = part.strip().partition("=")
            if eq:
                req.cookies[ck] = cv
    req.headers = hdrs
    parse_query(req, query)
    return req


def logic_keys(cond: Condition) -> list[str]:
    """Column names a condition refers to (used by PUT's primary-key check)."""
    if isinstance(cond, Logic):
        return [k for c in cond.children for k in logic_keys(c)]
    return [cond.field.name]
