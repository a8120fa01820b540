"""CORS the way PostgREST does it (``Cors.hs``): ``*`` by default, or the configured origins with
credentials; preflights answered here without touching the database."""

from __future__ import annotations

from typing import Any

_EXPOSE = (b"Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, "
           b"Transfer-Encoding, Range-Unit")
_WAL_HEADER = b"x-referral-wal-lsn"  # read-your-writes (docs/scaling.md): a browser client must be able to read it
_METHODS = b"GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"


class CORSMiddleware:
    def __init__(self, app: Any, allowed_origins: list[str] | None = None) -> None:
        self.app = app
        self.allowed = {o.encode() for o in allowed_origins} if allowed_origins else None

    def _origin_headers(self, origin: bytes) -> list[tuple[bytes, bytes]] | None:
        if self.allowed is None:
            return [(b"access-control-allow-origin", b"*")]
        if origin in self.allowed:
            return [(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true"),
                    (b"vary", b"Origin")]
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = req_method = req_headers = None
        for k, v in scope["headers"]:
            if k == b"origin":
                origin = v
            elif k == b"access-control-request-method":
                req_method = v
            elif k == b"access-control-request-headers":
                req_headers = v
        if origin is None:
            await self.app(scope, receive, send)
            return
        base = self._origin_headers(origin)
        if base is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and req_method is not None:
            allow = b"Authorization, " + (req_headers + b", " if req_headers else b"") + \
                b"Accept, Accept-Language, Content-Language"
            headers = [*base, (b"access-control-allow-methods", _METHODS), (b"access-control-allow-headers", allow),
                       (b"access-control-max-age", b"86400"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [*base, (b"access-control-expose-headers", _EXPOSE)]

        async def cors_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in extra}
                headers = [h for h in message["headers"] if h[0] not in names]
                if any(k == _WAL_HEADER for k, _ in headers):  # only with read replicas: PostgREST's list otherwise
                    headers += [*base, (b"access-control-expose-headers", _EXPOSE + b", X-Referral-WAL-LSN")]
                else:
                    headers += extra
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, cors_send)
