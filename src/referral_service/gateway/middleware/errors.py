"""Outermost middleware: every ApiError becomes PostgREST's error response; anything else a generic 500.

No traceback ever reaches the client; unexpected errors are logged with the request line.

It is also the one layer that wraps ``send`` for every request: it records the response's status and headers
in ``scope["state"]`` (``status``, ``response_headers``) for the layers inside that report on it (access log,
metrics), and appends the headers they asked for (``state["add_headers"]``, e.g. the request id) and
``Server``. One wrapper instead of one per layer: each costs a closure and an await per message.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import errors

log = logging.getLogger("referral_service.gateway")
_INTERNAL = errors.internal()
# PostgREST (Warp) names itself on every response, errors included; the version is the release whose wire
# behaviour the gateway reproduces (reference/postgrest-v13-more.md), for clients and proxies that read it.
SERVER = (b"server", b"postgrest/13.0.8")


class ErrorMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        added: list[tuple[bytes, bytes]] = state.setdefault("add_headers", [])

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["response_headers"] = headers = message.get("headers", [])
                message["headers"] = [*headers, *added, SERVER]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except errors.ClientDisconnected:
            pass
        except errors.ApiError as err:
            if "status" not in state:
                await send_error(recording_send, err, scope["method"] == "HEAD")
        except Exception:
            log.exception("unhandled error for %s %s", scope.get("method"), scope.get("path"))
            if "status" not in state:
                await send_error(recording_send, _INTERNAL, scope["method"] == "HEAD")


def response_status(state: dict) -> int:
    """The status the response was sent with, for the layers inside; 500 when none was (an error escapes
    them, the outermost layer answers it after they have finished)."""
    return state.get("status", 500)


async def send_error(send: Any, err: errors.ApiError, head: bool = False) -> None:
    status, headers, body = errors.render(err)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
