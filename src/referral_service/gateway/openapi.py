"""OpenAPI (Swagger 2.0) from the schema cache, and the ``Allow`` header for OPTIONS.

``PGRST_OPENAPI_MODE``: ``follow-privileges`` (default, as PostgREST) lists only the relations and functions
the request's role may use, asked of the catalog per request (GET / is rare; the answer is exact after any
GRANT); ``ignore-privileges`` lists everything exposed; ``disabled`` answers 404 PGRST126.
``PGRST_DB_ROOT_SPEC`` names a function that answers GET/HEAD/POST / instead (an RPC in the request's schema).
``PGRST_OPENAPI_SERVER_PROXY_URI`` is the public address the document names.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import psycopg
from psycopg_pool import PoolTimeout

from . import errors
from .request import ApiRequest
from .schema import Column, SchemaCache, Table

VERSION = "13.0.8"
_MEDIA = ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
          "application/vnd.pgrst.object+json", "text/csv"]


# What the role may use, as PostgREST's follow-privileges: owner (or member of it), any table privilege, or
# a column privilege; functions with EXECUTE. PUBLIC grants count (has_*_privilege sees them).
_VISIBLE = """
select 'r', c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %(schema)s and c.relkind in ('r', 'v', 'm', 'f', 'p') and not c.relispartition
  and (pg_has_role(%(role)s, c.relowner, 'USAGE')
       or has_table_privilege(%(role)s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       or has_any_column_privilege(%(role)s, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
union all
select 'f', p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = %(schema)s and p.prokind = 'f' and has_function_privilege(%(role)s, p.oid, 'EXECUTE')
"""
_ANY_HOST = {"*", "*4", "!4", "*6", "!6"}  # warp's special host names: "any address"


def root_path(path: str, method: str, settings: Any) -> str:
    """``/`` becomes ``/rpc/<db-root-spec>`` when one is set (only its name part, as PostgREST), unless the
    OpenAPI endpoint is disabled (PGRST126 comes first)."""
    spec = settings.db_root_spec
    if path != "/" or not spec or method not in ("GET", "HEAD", "POST", "OPTIONS"):
        return path
    if settings.openapi_mode == "disabled" and method != "OPTIONS":
        return path
    return "/rpc/" + quote(spec.rpartition(".")[2], safe="")


async def answer(cache: SchemaCache, schema: str, role: str, settings: Any, pool: Any) -> bytes:
    """The body of GET / (raises 404 PGRST126 when disabled)."""
    mode = settings.openapi_mode
    if mode == "disabled":
        raise errors.ApiError(404, "PGRST126", "Root endpoint metadata is disabled")
    visible = None
    if mode == "follow-privileges":
        if role not in cache.roles:
            raise errors.role_refused(role, False)
        visible = await _visible(pool, schema, role)
    return document(cache, schema, settings, visible)


async def _visible(pool: Any, schema: str, role: str) -> set[tuple[str, str]]:
    try:
        async with pool.connection() as conn:
            rows = await (await conn.execute(_VISIBLE, {"schema": schema, "role": role})).fetchall()
    except PoolTimeout:
        raise errors.pool_timeout() from None
    except psycopg.OperationalError as exc:
        raise errors.connection_error(str(exc)) from None
    return {(kind, name) for kind, name in rows}


def options_headers(req: ApiRequest, cache: SchemaCache, any_origin: bool = True) -> list[tuple[bytes, bytes]]:
    """``Allow``, and ``Access-Control-Allow-Origin: *`` only when any origin is allowed: with a list of
    origins, a refused preflight falls through to here and must not be granted by it."""
    if req.kind == "root":
        allow = "OPTIONS,GET,HEAD"
    elif req.kind == "rpc":
        fns = cache.functions_named(req.schema, req.name)
        if not fns:
            raise errors.function_not_found(req.schema, req.name, [], None)
        allow = "OPTIONS,POST" if any(f.volatility == "v" for f in fns) else "OPTIONS,GET,HEAD,POST"
    else:
        t = cache.table(req.schema, req.name)
        allow = "OPTIONS,GET,HEAD"
        if t.insertable:
            allow += ",POST"
        if t.insertable and t.updatable and t.pk:
            allow += ",PUT"
        if t.updatable:
            allow += ",PATCH"
        if t.deletable:
            allow += ",DELETE"
    headers = [(b"allow", allow.encode())]
    if any_origin:
        headers.append((b"access-control-allow-origin", b"*"))
    return headers


def _type(col: Column) -> dict[str, Any]:
    t = col.type
    out: dict[str, Any] = {"format": t}
    if t.endswith("[]"):
        out["type"] = "array"
        out["items"] = {"type": "string"}
    elif t in ("integer", "bigint", "smallint"):
        out["type"] = "integer"
    elif t in ("numeric", "real", "double precision") or t.startswith("numeric"):
        out["type"] = "number"
    elif t == "boolean":
        out["type"] = "boolean"
    elif t in ("json", "jsonb"):
        pass
    else:
        out["type"] = "string"
    return out


def _definition(t: Table) -> dict[str, Any]:
    props = {}
    for c in t.columns.values():
        p = _type(c)
        desc = c.description or ""
        if c.name in t.pk:
            desc = (desc + "\n\n" if desc else "") + "Note:\nThis is a Primary Key.<pk/>"
        if desc:
            p["description"] = desc
        if c.default is not None:
            p["default"] = c.default
        if c.nullable:  # Swagger 2.0 has no null type; without this, validators reject real rows with nulls
            p["x-nullable"] = True
        props[c.name] = p
    d: dict[str, Any] = {"type": "object", "properties": props}
    required = [c.name for c in t.columns.values() if not c.nullable and c.default is None]
    if required:
        d["required"] = required
    if t.description:
        d["description"] = t.description
    return d


def _server(settings: Any) -> tuple[str, str, str]:
    """(scheme, host:port, basePath) of the document: the proxy URI's, else the listening address."""
    proxy = settings.openapi_server_proxy_uri
    if proxy:
        parts = urlsplit(proxy)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        return parts.scheme, f"{host}:{port}", parts.path or "/"
    host = "0.0.0.0" if settings.server_host in _ANY_HOST else settings.server_host
    return "http", f"{host}:{settings.server_port}", "/"


def document(cache: SchemaCache, schema: str, settings: Any,
             visible: set[tuple[str, str]] | None = None) -> bytes:
    """``visible``: ("r"|"f", name) pairs the role may see; None for all."""
    desc = cache.descriptions.get(schema)
    title, _, rest = (desc or "PostgREST API").partition("\n")
    paths: dict[str, Any] = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                           "produces": ["application/openapi+json", "application/json"],
                                           "responses": {"200": {"description": "OK"}}}}}
    definitions = {}
    for (s, name), t in sorted(cache.tables.items()):
        if s != schema or (visible is not None and ("r", name) not in visible):
            continue
        definitions[name] = _definition(t)
        params = [{"$ref": f"#/parameters/rowFilter.{name}.{c}"} for c in t.columns]
        common = [{"$ref": "#/parameters/" + p} for p in ("select", "order", "range", "rangeUnit", "offset",
                                                          "limit", "preferCount")]
        ops: dict[str, Any] = {"get": {"tags": [name], "summary": (t.description or "").split("\n")[0] or None,
                                       "parameters": params + common,
                                       "responses": {"200": {"description": "OK", "schema": {
                                           "type": "array", "items": {"$ref": f"#/definitions/{name}"}}},
                                           "206": {"description": "Partial Content"}}}}
        body = {"$ref": f"#/parameters/body.{name}"}
        if t.insertable:
            ops["post"] = {"tags": [name], "parameters": [body, {"$ref": "#/parameters/select"},
                                                          {"$ref": "#/parameters/preferPost"}],
                           "responses": {"201": {"description": "Created"}}}
        if t.updatable:
            ops["patch"] = {"tags": [name], "parameters": [*params, body, {"$ref": "#/parameters/preferReturn"}],
                            "responses": {"204": {"description": "No Content"}}}
        if t.deletable:
            ops["delete"] = {"tags": [name], "parameters": [*params, {"$ref": "#/parameters/preferReturn"}],
                             "responses": {"204": {"description": "No Content"}}}
        for op in ops.values():
            if op.get("summary") is None:
                op.pop("summary", None)
        paths[f"/{name}"] = ops
    for (s, name), fns in sorted(cache.functions.items()):
        if s != schema or (visible is not None and ("f", name) not in visible):
            continue
        fn = fns[0]
        args = {a.name: {"format": a.type, "type": _type(Column(a.name, a.type, True, None)).get("type", "string")}
                for a in fn.args}
        post: dict[str, Any] = {"tags": ["(rpc) " + name], "parameters": [{
            "required": True, "schema": {"type": "object", "properties": args,
                                         "required": sorted(a.name for a in fn.args if not a.has_default)},
            "in": "body", "name": "args"}, {"$ref": "#/parameters/preferParams"}],
            "responses": {"200": {"description": "OK"}}}
        if fn.description:
            post["summary"] = fn.description.split("\n")[0]
            post["description"] = fn.description
        paths[f"/rpc/{name}"] = {"post": post}
    parameters = _shared_parameters(cache, schema, visible)
    scheme, host, base = _server(settings)
    doc = {
        "swagger": "2.0",
        "info": {"title": title, "description": rest.strip() or None, "version": VERSION},
        "host": host,
        "basePath": base,
        "schemes": [scheme],
        "consumes": ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
                     "application/vnd.pgrst.object+json", "text/csv"],
        "produces": _MEDIA,
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "externalDocs": {"description": "PostgREST Documentation", "url": "https://postgrest.org/en/v13/"},
    }
    if doc["info"]["description"] is None:  # type: ignore[index]
        del doc["info"]["description"]  # type: ignore[attr-defined]
    return orjson.dumps(doc)


def _shared_parameters(cache: SchemaCache, schema: str, visible: set[tuple[str, str]] | None) -> dict[str, Any]:
    def q(name: str, desc: str) -> dict[str, Any]:
        return {"name": name, "description": desc, "required": False, "in": "query", "type": "string"}

    def h(name: str, desc: str, enum: list[str] | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"name": name, "description": desc, "required": False, "in": "header",
                             "type": "string"}
        if enum:
            d["enum"] = enum
        return d

    params: dict[str, Any] = {
        "preferParams": h("Prefer", "Preference", ["params=single-object"]),
        "preferReturn": h("Prefer", "Preference", ["return=representation", "return=minimal", "return=none"]),
        "preferCount": h("Prefer", "Preference", ["count=none"]),
        "preferPost": h("Prefer", "Preference", ["return=representation", "return=minimal", "return=none",
                                                 "resolution=ignore-duplicates", "resolution=merge-duplicates"]),
        "select": q("select", "Filtering Columns"),
        "on_conflict": q("on_conflict", "On Conflict"),
        "order": q("order", "Ordering"),
        "range": h("Range", "Limiting and Pagination"),
        "rangeUnit": {**h("Range-Unit", "Limiting and Pagination"), "default": "items"},
        "offset": q("offset", "Limiting and Pagination"),
        "limit": q("limit", "Limiting and Pagination"),
    }
    for (s, name), t in sorted(cache.tables.items()):
        if s != schema or (visible is not None and ("r", name) not in visible):
            continue
        params[f"body.{name}"] = {"name": name, "description": name, "required": False, "in": "body",
                                  "schema": {"$ref": f"#/definitions/{name}"}}
        for c in t.columns.values():
            params[f"rowFilter.{name}.{c.name}"] = {"name": c.name, "required": False, "in": "query",
                                                    "type": "string", "format": c.type,
                                                    **({"description": c.description} if c.description else {})}
    return params
