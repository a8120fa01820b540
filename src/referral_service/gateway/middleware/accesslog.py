"""One JSON log line per request, with a request id that is accepted from the client and echoed back.

Logged: method, path (without the query string, which may carry search terms or tokens), status, the
PGRST error code (``code``, from the response's ``Proxy-Status``), duration, role, user id (the token's
``sub``), client address (as the rate limiter resolved it: trusted proxies honoured) and request id. Never
headers or bodies. The level follows the status, as PostgREST's log-level does: 5xx error, 4xx warn, else info.

Every logged string a client can influence is escaped first: C0 controls, DEL, C1 controls and the
Unicode line separators become ``%XX``-style escapes (``\\n`` → ``%0A``) and unpaired surrogates
``\\udXXX``. JSON would escape the controls anyway, but a reader that prints the decoded field
(``jq -r .path``) must not see a forged line either, and orjson refuses surrogates outright.
:mod:`referral_service.logging` applies the same to every other record before rendering it.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from typing import Any

import orjson

from ...logging import access_logger
from .errors import response_status

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if 0xD800 <= code <= 0xDFFF else "".join(
        f"%{b:02X}" for b in match.group().encode())


def escape(text: Any) -> Any:
    """``text`` with control characters, line separators and surrogates made visible; non-strings as is."""
    if not isinstance(text, str) or not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_escape_char, text)


class AccessLogMiddleware:
    def __init__(self, app: Any, logger: Any = None) -> None:
        self.app = app
        self.log = logger or access_logger()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state.setdefault("add_headers", []).append((b"x-request-id", request_id.encode()))
        try:
            await self.app(scope, receive, send)
        finally:
            status = response_status(state)  # recorded by the outermost layer (middleware/errors.py)
            code = _error_code(state.get("response_headers", ())) if status >= 400 else None
            emit = self.log.error if status >= 500 else self.log.warning if status >= 400 else self.log.info
            emit("request", method=escape(scope["method"]), path=escape(scope["path"]), status=status, code=code,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2), role=escape(state.get("role")),
                 user_id=_user_id(state), client=escape(_client(scope, state)),
                 request_id=request_id)


def _error_code(headers: list[tuple[bytes, bytes]]) -> str | None:
    """``PGRST116`` from ``Proxy-Status: PostgREST; error=PGRST116`` (set by the one error renderer)."""
    for name, value in headers:
        if name == b"proxy-status":
            _, found, code = value.partition(b"error=")
            return code.split(b";")[0].strip().decode("latin-1") if found else None
    return None


def _user_id(state: dict) -> Any:
    """The token's ``sub`` (parsed here, after the response, only for authenticated requests)."""
    claims = state.get("claims")
    if not claims:
        return None
    try:
        sub = orjson.loads(claims).get("sub")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return escape(sub) if isinstance(sub, str) else sub if isinstance(sub, int) else None


def _client(scope: dict, state: dict) -> str | None:
    address = state.get("client_address")
    if address is None and scope.get("client"):
        address = scope["client"][0]
    return address


def _request_id(scope: dict) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _VALID_ID.match(value):
            return value.decode()
    return f"{_id_prefix[0]}{next(_ids):012x}"


# A request id names one request in the logs; it is no secret. A random prefix per process and a counter:
# unique across workers and hosts as uuid4 was (the same 32 hex digits), without its read of os.urandom
# (a system call per request: ~2 % of a worker's time on the list read, bench W1).
_id_prefix = [uuid.uuid4().hex[:20]]
_ids = itertools.count()
os.register_at_fork(after_in_child=lambda: _id_prefix.__setitem__(0, uuid.uuid4().hex[:20]))
