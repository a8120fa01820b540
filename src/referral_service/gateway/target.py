"""What a request is addressed to, resolved the way the gateway executes it: schema + relation or function.

Rate limits, per-client caps and metrics labels key on this, never on the raw path, so that every spelling
of a route the gateway would run (``/rpc/login/``, ``/rpc/%6Cogin``, a profile header) is classified as
the function it runs. Unknown targets resolve to ``None``: they are answered 404 without touching the
database, and share one metrics label.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import errors
from .request import parse_target
from .schema import SchemaCache


@dataclass(frozen=True, slots=True)
class Target:
    schema: str
    kind: str  # root | relation | rpc
    name: str

    @property
    def qualified(self) -> str:
        """``api.login`` (functions and relations alike), ``api`` for the root."""
        return f"{self.schema}.{self.name}" if self.name else self.schema

    @property
    def label(self) -> str:
        """A bounded metrics label: ``/``, ``/offers``, ``/rpc/login`` (one per object in the cache)."""
        if self.kind == "root":
            return "/"
        return f"/rpc/{self.name}" if self.kind == "rpc" else f"/{self.name}"


def request_path(scope: dict) -> str:
    """The path as sent, percent-encoding intact: ASGI's ``path`` is already decoded, and decoding it a
    second time would let ``%2F`` split a name or ``%25`` smuggle another name past a classifier."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1").partition("?")[0] if raw else scope["path"]


def resolve(scope: dict, schemas: list[str], cache: SchemaCache | None) -> Target | None:
    if cache is None:
        return None
    try:
        kind, name = parse_target(request_path(scope))
    except errors.ApiError:
        return None
    schema = schemas[0]
    wanted = b"accept-profile" if scope["method"] in ("GET", "HEAD") else b"content-profile"
    for header, value in scope["headers"]:
        if header == wanted:
            schema = value.decode("latin-1")
            if schema not in schemas:
                return None
    if kind == "root":
        return Target(schema, kind, "")
    known = cache.functions if kind == "rpc" else cache.tables
    return Target(schema, kind, name) if (schema, name) in known else None
