"""``Server: postgrest/<version>`` on every response, as PostgREST (Warp) sends it.

The version is the PostgREST release whose wire behaviour the gateway reproduces
(``reference/postgrest-v13-more.md``), so that a client or a proxy that reads it sees the dialect it gets.
Outermost, so errors from any middleware carry it too.
"""

from __future__ import annotations

from typing import Any

SERVER = (b"server", b"postgrest/13.0.8")


class ServerHeaderMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_server(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), SERVER]
            await send(message)

        await self.app(scope, receive, send_with_server)
