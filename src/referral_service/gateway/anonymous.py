"""Input bounds for the anonymous role: what an unauthenticated caller may hand the database.

A statement timeout does not bound everything: some built-ins (the full-text search parser among them) never
check for interrupts, so a megabyte of text runs for seconds past the anonymous role's 3 s. Signed-in callers
are identified and rate-limited per account; anonymous ones are bounded here, before any SQL runs.
"""

from __future__ import annotations

import orjson

from . import errors
from .request import ApiRequest


def check(req: ApiRequest, max_length: int, max_body: int) -> None:
    """Raise a 4xx when a query value, a top-level RPC argument or the body exceeds the anonymous bounds."""
    if max_body and len(req.body) > max_body:
        raise errors.anonymous_body_too_large(max_body)
    if not max_length:
        return
    if req.longest_value > max_length:
        raise errors.anonymous_value_too_long(max_length)
    if req.kind == "rpc" and req.body:
        try:
            args = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            return  # the planner answers malformed JSON with PostgREST's own error
        if isinstance(args, dict) and any(isinstance(v, str) and len(v) > max_length for v in args.values()):
            raise errors.anonymous_value_too_long(max_length)
