"""Outermost middleware: every ApiError becomes PostgREST's error response; anything else a generic 500.

No traceback ever reaches the client; unexpected errors are logged with the request line.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import errors

log = logging.getLogger("referral_service.gateway")
_INTERNAL = errors.internal()


class ErrorMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except errors.ClientDisconnected:
            pass
        except errors.ApiError as err:
            if not started:
                await send_error(send, err, scope["method"] == "HEAD")
        except Exception:
            log.exception("unhandled error for %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_error(send, _INTERNAL, scope["method"] == "HEAD")


async def send_error(send: Any, err: errors.ApiError, head: bool = False) -> None:
    status, headers, body = errors.render(err)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
