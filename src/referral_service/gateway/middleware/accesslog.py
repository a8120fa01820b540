"""One JSON log line per request, with a request id that is accepted from the client and echoed back.

Logged: method, path (without the query string, which may carry search terms or tokens), status,
duration, role and request id. Never headers or bodies.

Every logged string a client can influence is escaped first: C0 controls, DEL, C1 controls and the
Unicode line separators become ``%XX``-style escapes (``\\n`` → ``%0A``) and unpaired surrogates
``\\udXXX``. JSON would escape the controls anyway, but a reader that prints the decoded field
(``jq -r .path``) must not see a forged line either, and orjson refuses surrogates outright.
:class:`OneLineFormatter` does the same for the plain-text log (stderr): one record, one line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import structlog

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


class OneLineFormatter(logging.Formatter):
    """A plain-text formatter whose records never span lines (tracebacks included: ``\\n`` → ``%0A``)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record))


class AccessLogMiddleware:
    def __init__(self, app: Any, logger: Any = None) -> None:
        self.app = app
        self.log = logger or structlog.get_logger("referral_service.access")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.log.info(
                "request", method=escape(scope["method"]), path=escape(scope["path"]), status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                role=escape(scope["state"].get("role")), request_id=request_id,
            )


def _request_id(scope: dict) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _VALID_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex
