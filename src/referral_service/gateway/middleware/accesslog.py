"""One JSON log line per request, with a request id that is accepted from the client and echoed back.

Logged: method, path (without the query string, which may carry search terms or tokens), status,
duration, role and request id. Never headers or bodies.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


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
                "request", method=scope["method"], path=scope["path"], status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                role=scope["state"].get("role"), request_id=request_id,
            )


def _request_id(scope: dict) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _VALID_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex
