"""The Accept header → the media types a client asked for, in PostgREST's order.

PostgREST (through wai-extra's ``parseHttpAccept``) removes spaces, cuts each element at ``;q=``, and sorts
the elements stably by q (descending), then by specificity (``;`` count minus ``*`` count, descending): at the
same q a concrete type beats ``*/*``, and ``q=0`` only sorts last. The first element the endpoint has a
handler for wins (see :mod:`.media`); none → 406 PGRST107 listing each element in canonical form.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

EXPLAIN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")  # EXPLAIN's own order


@dataclass(slots=True, frozen=True)
class Explain:
    """``application/vnd.pgrst.plan[+text|+json]; for="..."; options=a|b``."""

    fmt: str  # text | json
    target: Media  # the representation whose query is explained
    options: tuple[str, ...] = ()

    @property
    def mime(self) -> str:
        opts = f"; options={'|'.join(self.options)}" if self.options else ""
        return f'application/vnd.pgrst.plan+{self.fmt}; for="{self.target.mime}"{opts}'


@dataclass(slots=True, frozen=True)
class Media:
    kind: str  # json | object | csv | geojson | openapi | any | plan | handler | other (no builtin serves it)
    stripped: bool = False
    mime: str = "application/json"  # canonical form: error messages, Content-Type, handler lookup
    explain: Explain | None = None  # kind == "plan"
    handler: Any = None  # kind == "handler": a media.Handler


_JSON = ("application/json", "application/*")
_ARRAY = ("application/vnd.pgrst.array+json", "application/vnd.pgrst.array")
_OBJECT = ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object")
_PLAN = {"application/vnd.pgrst.plan": "text", "application/vnd.pgrst.plan+text": "text",
         "application/vnd.pgrst.plan+json": "json"}


def _params(parts: list[str]) -> dict[str, str]:
    out = {}
    for p in parts:
        k, eq, v = p.partition("=")
        if not eq:
            continue
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        elif not all(c.isalnum() or c in "|-" for c in v):
            continue  # PostgREST's unquoted values are letters, digits, | and -: `for=text/xml` is dropped
        out[k.strip().lower()] = v
    return out


def decode(element: str) -> Media:
    """One Accept element (spaces removed, q cut off) → a media type."""
    mime, *rest = element.split(";")
    mime = mime.lower()
    params = _params(rest)
    stripped = params.get("nulls") == "stripped"
    if mime == "*/*":
        return Media("any", mime="*/*")
    if mime in _JSON:
        return Media("json", mime="application/json")
    if mime in _ARRAY:
        if stripped:
            return Media("json", True, "application/vnd.pgrst.array+json;nulls=stripped")
        return Media("json", mime="application/json")
    if mime in _OBJECT:
        return Media("object", stripped, "application/vnd.pgrst.object+json" + (";nulls=stripped" * stripped))
    if mime in ("text/csv", "text/*"):
        return Media("csv", mime="text/csv")
    if mime == "application/geo+json":
        return Media("geojson", mime=mime)
    if mime == "application/openapi+json":
        return Media("openapi", mime=mime)
    if mime in _PLAN:
        target = decode(params["for"].replace(" ", "")) if "for" in params else Media("json")
        if target.kind == "any":
            target = Media("json")
        options = tuple(o for o in EXPLAIN_OPTIONS if o in params.get("options", "").split("|"))
        ex = Explain(_PLAN[mime], target, options)
        return Media("plan", mime=ex.mime, explain=ex)
    if "/" not in mime or mime.startswith("/") or mime.endswith("/"):
        return Media("other", mime=element)  # unparseable: echoed as written
    return Media("other", mime=mime)


def _q(rest: str) -> float:
    try:
        return float(rest.split(";", 1)[0])
    except ValueError:
        return 1.0


def parse(value: str | None) -> list[Media]:
    """The Accept header's media types, best first (a missing or blank header is ``*/*``)."""
    if value is None or not value.strip():
        return [Media("any", mime="*/*")]
    ranked: list[tuple[float, int, str]] = []
    for part in value.split(","):
        element = "".join(part.split())
        if not element:
            continue
        head, cut, rest = element.partition(";q=")
        q = _q(rest) if cut else 1.0
        ranked.append((q, head.count(";") - head.count("*"), head))
    ranked.sort(key=lambda r: (-r[0], -r[1]))  # stable: equal ranks keep the client's order
    return [decode(head) for _, _, head in ranked]


def builtin(media: Media, kind: str, plan_enabled: bool = False) -> Media | None:
    """The builtin representation serving ``media`` for an endpoint of ``kind`` (root, relation, rpc); plans
    only with ``db-plan-enabled`` (otherwise they never match: the generic 406)."""
    if kind == "root":
        return Media("openapi", mime="application/openapi+json") if media.kind in ("openapi", "json", "any") \
            else None
    if media.kind == "any":
        return Media("json")
    if media.kind in ("json", "object", "csv", "geojson"):
        return media
    if media.kind == "plan" and plan_enabled and media.explain is not None \
            and builtin(media.explain.target, kind) is not None:
        return media
    return None


def negotiate(value: str | None, kind: str, plan_enabled: bool) -> tuple[tuple[Media, ...], Media | None]:
    """The Accept header's types and the first builtin serving one. A client sends the same header on every
    request: short ones are parsed once per worker (the values are immutable); long ones are not kept."""
    if value is not None and len(value) > 256:
        return _negotiate.__wrapped__(value, kind, plan_enabled)
    return _negotiate(value, kind, plan_enabled)


@functools.lru_cache(maxsize=256)
def _negotiate(value: str | None, kind: str, plan_enabled: bool) -> tuple[tuple[Media, ...], Media | None]:
    asked = tuple(parse(value))
    for m in asked:
        found = builtin(m, kind, plan_enabled)
        if found is not None:
            return asked, found
    return asked, None
