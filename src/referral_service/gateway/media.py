"""Media-type handlers (PostgREST v12+): which representation answers a request, and its body SQL.

A media type is a domain named like it (``create domain "text/html" as text``; ``"*/*"`` is the any-handler).
A handler is an aggregate in an exposed schema over one relation's row type (or ``anyelement``, for any
relation) returning such a domain, or a plain (non-SETOF) function returning one (its own result). For each
type the client accepts, best first: PostgREST's vendor types → builtin; with the default select, the
relation's own ``*/*`` handler, then its handler for that type; then an ``anyelement`` handler; then a builtin
(JSON, CSV, GeoJSON). Nothing → 406 PGRST107. The body is the handler's value, byte for byte.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .accept import Media, builtin
from .grammar import Star

_DOMAINS = r"""
select format_type(t.oid, null), lower(t.typname),
       coalesce((select b.typname from pg_type b where b.oid = t.typbasetype), '') = 'bytea'
from pg_type t
where t.typtype = 'd' and (t.typname ~* '^[A-Za-z0-9.-]+/[A-Za-z0-9.\+-]+$' or t.typname = '*/*')
"""
_AGGREGATES = """
select n.nspname, p.proname, format_type(p.prorettype, null), p.proargtypes[0] = 'anyelement'::regtype,
       rn.nspname, rc.relname
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
join pg_type at on at.oid = p.proargtypes[0]
left join pg_class rc on rc.oid = at.typrelid and rc.relkind in ('r', 'v', 'm', 'f', 'p')
left join pg_namespace rn on rn.oid = rc.relnamespace
where p.prokind = 'a' and p.pronargs = 1 and n.nspname = any(%s)
  and (p.proargtypes[0] = 'anyelement'::regtype or rc.oid is not null)
"""
_CHARSET = frozenset({"application/json", "text/csv", "text/plain", "text/xml", "application/geo+json",
                      "application/openapi+json", "application/vnd.pgrst.object+json",
                      "application/vnd.pgrst.array+json;nulls=stripped",
                      "application/vnd.pgrst.object+json;nulls=stripped"})


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(slots=True, frozen=True)
class Handler:
    mime: str  # the domain's name, lower-cased; "*/*" answers any Accept
    call: str  # SQL over the rows `_postgrest_t` (catalog names only, quoted)
    binary: bool  # a bytea domain: the body is sent as bytes


@dataclass(slots=True)
class MediaCache:
    domains: dict[str, tuple[str, bool]] = field(default_factory=dict)  # format_type → (media type, bytea)
    # (schema, relation) → media type → handler; the key None holds the anyelement handlers
    aggregates: dict[tuple[str, str] | None, dict[str, Handler]] = field(default_factory=dict)


async def load(conn: Any, schemas: list[str]) -> MediaCache:
    mc = MediaCache()
    async with conn.cursor() as cur:
        await cur.execute(_DOMAINS)
        mc.domains = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
        if not mc.domains:
            return mc
        await cur.execute(_AGGREGATES, [schemas])
        for schema, name, rettype, generic, rschema, rname in await cur.fetchall():
            if rettype not in mc.domains:
                continue
            mime, binary = mc.domains[rettype]
            arg = "_postgrest_t" if generic else f"_postgrest_t::{_q(rschema)}.{_q(rname)}"
            handler = Handler(mime, f"{_q(schema)}.{_q(name)}({arg})", binary)
            mc.aggregates.setdefault(None if generic else (rschema, rname), {})[mime] = handler
    return mc


def content_type(media: Media) -> bytes:
    return _content_type(media.mime)


@functools.lru_cache(maxsize=64)
def _content_type(mime: str) -> bytes:
    mime = "application/octet-stream" if mime == "*/*" else mime
    return (f"{mime}; charset=utf-8" if mime in _CHARSET else mime).encode()


def _specific(plan: Any, mc: MediaCache) -> dict[str, Handler]:
    """The handlers of this endpoint's own relation, or of the function itself when it returns a media type."""
    call = plan.call
    if call is not None and call.fn.kind != "composite":
        found = mc.domains.get(call.fn.return_type)
        if found is None or call.fn.returns_set:
            return {}
        mime, binary = found
        return {mime: Handler(mime, "(pg_catalog.array_agg(_postgrest_t.pgrst_scalar))[1]", binary)}
    t = plan.node.table
    return mc.aggregates.get((t.schema, t.name), {})


def _default_select(plan: Any) -> bool:
    return all(isinstance(s, Star) for s in plan.req.select)


def negotiate(plan: Any, mc: MediaCache | None, plan_enabled: bool) -> None:
    """Pick the representation for ``plan.req`` (sets ``req.media``); 406 PGRST107 when nothing serves it."""
    req = plan.req
    if not mc or not mc.domains or req.explain is not None:
        if req.media.kind == "other":
            raise errors.unacceptable_media([m.mime for m in req.accept])
        return
    own = _specific(plan, mc) if _default_select(plan) else {}
    generic = mc.aggregates.get(None, {})
    for m in req.accept:
        vendor = m.kind == "object" or m.kind == "plan" or (m.kind == "json" and m.stripped)
        h = None if vendor else (own.get("*/*") or own.get(m.mime) or generic.get(m.mime))
        if h is not None:
            req.media = Media("handler", mime=h.mime, handler=h)  # "*/*": application/octet-stream
            return
        found = builtin(m, req.kind, plan_enabled)
        if found is not None:
            if found.kind == "plan" and found.explain is not None:
                req.explain, found = found.explain, found.explain.target
            req.media = found
            return
    raise errors.unacceptable_media([m.mime for m in req.accept])


def body_sql(plan: Any) -> str:
    """The body expression for a handler or GeoJSON (a text or bytea column)."""
    media = plan.req.media
    if media.kind == "geojson":
        return ("json_build_object('type', 'FeatureCollection', 'features', "
                "coalesce(json_agg(ST_AsGeoJSON(_postgrest_t)::json), '[]'))::text")
    h: Handler = media.handler
    return f"{h.call}::{'bytea' if h.binary else 'text'}"
