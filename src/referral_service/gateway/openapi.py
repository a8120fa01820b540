"""OpenAPI (Swagger 2.0) from the schema cache, and the ``Allow`` header for OPTIONS."""

from __future__ import annotations

from typing import Any

import orjson

from . import errors
from .request import ApiRequest
from .schema import Column, SchemaCache, Table

VERSION = "13.0.8"
_MEDIA = ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
          "application/vnd.pgrst.object+json", "text/csv"]


def options_headers(req: ApiRequest, cache: SchemaCache) -> list[tuple[bytes, bytes]]:
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
    return [(b"allow", allow.encode()), (b"access-control-allow-origin", b"*")]


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


def document(cache: SchemaCache, schema: str, settings: Any) -> bytes:
    desc = cache.descriptions.get(schema)
    title, _, rest = (desc or "PostgREST API").partition("\n")
    paths: dict[str, Any] = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                           "produces": ["application/openapi+json", "application/json"],
                                           "responses": {"200": {"description": "OK"}}}}}
    definitions = {}
    for (s, name), t in sorted(cache.tables.items()):
        if s != schema:
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
        if s != schema:
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
    parameters = _shared_parameters(cache, schema)
    doc = {
        "swagger": "2.0",
        "info": {"title": title, "description": rest.strip() or None, "version": VERSION},
        "host": f"{settings.server_host}:{settings.server_port}",
        "basePath": "/",
        "schemes": ["http"],
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


def _shared_parameters(cache: SchemaCache, schema: str) -> dict[str, Any]:
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
        if s != schema:
            continue
        params[f"body.{name}"] = {"name": name, "description": name, "required": False, "in": "body",
                                  "schema": {"$ref": f"#/definitions/{name}"}}
        for c in t.columns.values():
            params[f"rowFilter.{name}.{c.name}"] = {"name": c.name, "required": False, "in": "query",
                                                    "type": "string", "format": c.type,
                                                    **({"description": c.description} if c.description else {})}
    return params
