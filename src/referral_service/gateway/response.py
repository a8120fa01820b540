"""Plan + Result → status, headers and body. The body text from PostgreSQL is passed on undecoded."""

from __future__ import annotations

import string
from urllib.parse import quote

import orjson

from . import errors, media
from .execute import Result
from .plan import Plan

Headers = list[tuple[bytes, bytes]]
_CT = {"csv": b"text/csv; charset=utf-8"}  # the others from the negotiated type (media.content_type)


def content_range(lower: int, upper: int, total: int | None) -> bytes:
    rng = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{rng}/{'*' if total is None else total}".encode()


def resolve_total(plan: Plan, res: Result, planned: int | None, max_rows: int | None) -> int | None:
    if plan.count == "exact":
        return res.total
    if plan.count == "planned":
        return planned if planned is not None else res.total
    if plan.count == "estimated":
        if max_rows is not None and res.total is not None and res.total > max_rows and planned is not None:
            return max(planned, max_rows)
        return res.total
    return None


def needs_decision(plan: Plan) -> bool:
    """Writes whose COMMIT depends on the result (singular Accept, strict max-affected)."""
    if plan.read_only:
        return False
    p = plan.req.prefer
    return plan.req.media.kind == "object" or (p.handling == "strict" and p.max_affected is not None)


def check(plan: Plan, res: Result) -> errors.ApiError | None:
    """The result-dependent failures; a write that fails them is rolled back."""
    req = plan.req
    p = req.prefer
    if p.handling == "strict" and p.max_affected is not None and req.method in ("PATCH", "DELETE", "POST") \
            and (plan.mutation is None or plan.mutation.kind in ("update", "delete")) \
            and res.page_total > p.max_affected:
        return errors.max_affected(res.page_total, p.max_affected)
    if req.media.kind == "object" and res.page_total != 1 and not (plan.call and not plan.call.fn.returns_set):
        return errors.singular(res.page_total)
    return None


def _preference_applied(plan: Plan) -> bytes | None:
    p = plan.req.prefer
    out = []
    if plan.mutation is not None and plan.mutation.on_conflict is not None and p.resolution \
            and plan.mutation.kind == "insert":
        out.append(f"resolution={p.resolution}")
    if p.missing and plan.mutation is not None:
        out.append(f"missing={p.missing}")
    if p.ret and (plan.mutation is not None):
        out.append(f"return={p.ret}")
    if plan.count:
        out.append(f"count={plan.count}")  # exact where an estimate would count rows RLS hides
    if p.tx:
        out.append(f"tx={p.tx}")  # only where db-tx-end allows the override (execute.tx_rollback)
    if p.handling:
        out.append(f"handling={p.handling}")
    if p.timezone:
        out.append(f"timezone={p.timezone}")
    if p.max_affected is not None and p.handling == "strict":
        out.append(f"max-affected={p.max_affected}")
    return ", ".join(out).encode() if out else None


def _location(plan: Plan, body: str) -> bytes | None:
    pk = plan.node.table.pk
    rows = orjson.loads(body) if body else []
    if not pk or len(rows) != 1:
        return None
    row = rows[0]
    parts = []
    for c in pk:
        v = row.get(c)
        val = "is.null" if v is None else "eq." + (v if isinstance(v, str) else orjson.dumps(v).decode())
        parts.append(f"{quote(c)}={quote(val, safe='.')}")
    return f"/{quote(plan.node.table.name)}?{'&'.join(parts)}".encode()


def build(plan: Plan, res: Result, total: int | None, schemas: list[str]) -> tuple[int, Headers, bytes]:
    req = plan.req
    headers: Headers = []
    body = res.body if isinstance(res.body, bytes) else res.body.encode()
    mut = plan.mutation
    status = 200
    if mut is not None:
        n = res.page_total
        if mut.kind == "insert":
            status = 201
            if mut.resolution == "merge-duplicates" and res.extra == 0 and n > 0:
                status = 200
            headers.append((b"content-range", content_range(1, 0, n if req.prefer.count else None)))
        else:
            headers.append((b"content-range", content_range(0, n - 1, n if req.prefer.count else None)))
            status = 204
            if req.prefer.ret == "representation":
                status = 200
                if mut.kind == "put":
                    status = 201 if (res.extra or 0) > 0 else 200
        if req.prefer.ret == "headers-only":
            loc = _location(plan, res.body) if mut.kind == "insert" else None
            if loc:
                headers.append((b"location", loc))
            body = b""
        elif req.prefer.ret != "representation":
            body = b""
    elif plan.call is not None and plan.call.fn.kind == "void":
        status, body = 204, b""
    else:
        lower = plan.offset
        upper = lower + res.page_total - 1
        if total is not None and lower > total:
            raise errors.invalid_range(f"An offset of {lower} was requested, but there are only {total} rows.",
                                       total)
        if plan.call is not None and not plan.call.fn.returns_set:
            lower, upper = 0, 0
        if total is not None and (1 + upper - lower) < total:
            status = 206
        headers.append((b"content-range", content_range(lower, upper, total)))
        if plan.call is None:
            # the query as decoded may hold control characters or non-ASCII: not in a header
            query = quote(req.query_sorted, safe=string.punctuation)
            loc = f"/{quote(req.name)}" + (f"?{query}" if query else "")
            headers.append((b"content-location", loc.encode()))
        if req.media.kind == "csv" and req.method != "HEAD":
            body = b"\n" if res.page_total == 0 else (",".join(plan.node.keys) + "\n").encode() + body
    if body or (req.method == "HEAD" and status != 204) or (mut is not None and req.prefer.ret == "representation"):
        headers.append((b"content-type", _CT.get(req.media.kind) or media.content_type(req.media)))
    pref = _preference_applied(plan)
    if pref:
        headers.append((b"preference-applied", pref))
    if len(schemas) > 1:
        headers.append((b"content-profile", req.schema.encode()))
    return _overrides(status, headers, body, res)


def _overrides(status: int, headers: Headers, body: bytes, res: Result) -> tuple[int, Headers, bytes]:
    """``response.headers`` / ``response.status`` set by SQL replace the defaults."""
    if res.response_headers:
        try:
            items = orjson.loads(res.response_headers)
            extra = []
            for obj in items:
                (k, v), = obj.items()
                if not isinstance(v, str):
                    raise ValueError
                extra.append((k.lower().encode("latin-1"), errors.header_text(v).encode("latin-1")))
        except (ValueError, TypeError, AttributeError, UnicodeEncodeError):
            raise errors.bad_response_headers() from None
        names = {k for k, _ in extra}
        headers = [h for h in headers if h[0] not in names] + extra
    if res.response_status:
        value = res.response_status.strip()
        if not value.isdigit() or not 100 <= int(value) <= 599:
            raise errors.bad_response_status(value)
        status = int(value)
    return status, headers, body
