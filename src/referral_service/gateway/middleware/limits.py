"""Request size limits: 414 for a long URL, 413 for a large body (declared or streamed), before any work."""

from __future__ import annotations

from typing import Any

from .. import errors
from .errors import send_error


class LimitsMiddleware:
    def __init__(self, app: Any, max_body: int, max_url: int) -> None:
        self.app, self.max_body, self.max_url = app, max_body, max_url

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if self.max_url and len(scope.get("raw_path") or b"") + len(scope["query_string"]) > self.max_url:
            await send_error(send, errors.uri_too_long(self.max_url), head)
            return
        if not self.max_body or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_body:  # refuse before reading a byte
                    await send_error(send, errors.payload_too_large(self.max_body), head)
                    return
                break
        limit, seen = self.max_body, 0

        async def counting_receive() -> dict:  # chunked bodies declare no length: count what arrives
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise errors.payload_too_large(limit)
            return message

        await self.app(scope, counting_receive, send)
