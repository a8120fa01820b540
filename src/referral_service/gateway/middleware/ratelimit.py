"""Per-client rate limits: 429 with Retry-After and RateLimit-* headers (IETF draft fields).

The client is the JWT subject when a valid token is sent, else the client address; the address is
taken from X-Forwarded-For only when the direct peer is a configured trusted proxy. Sign-in and sign-up
paths get a second, much stricter limit against brute force and account spam.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..ratelimit import Decision, Rate, SharedLimiter

Identify = Callable[[str], str | None]  # Authorization header -> subject of a valid token, or None


class RateLimitMiddleware:
    def __init__(self, app: Any, limiter: SharedLimiter, general: Rate | None, strict: Rate | None,
                 strict_paths: Iterable[str], trusted_proxies: Iterable[str], identify: Identify,
                 on_limited: Callable[[str], None] = lambda _name: None) -> None:
        self.app = app
        self.limiter = limiter
        self.general = general
        self.strict = strict
        self.strict_paths = frozenset(strict_paths)
        self.proxies = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies if p.strip()]
        self.identify = identify
        self.on_limited = on_limited

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (self.general is None and self.strict is None):
            await self.app(scope, receive, send)
            return
        client = self.client_key(scope)
        decision = None
        if self.strict is not None and scope["path"] in self.strict_paths:
            decision = self.limiter.hit(f"strict:{scope['path']}:{client}", self.strict)
            if not decision.allowed:
                self.on_limited("strict")
                await _too_many(send, decision)
                return
        if self.general is not None:
            general = self.limiter.hit(f"all:{client}", self.general)
            if not general.allowed:
                self.on_limited("general")
                await _too_many(send, general)
                return
            decision = decision or general
        headers = _rate_headers(decision)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def client_key(self, scope: dict) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization":
                subject = self.identify(value.decode("latin-1"))
                if subject:
                    return f"sub:{subject}"
                break
        return f"ip:{self.client_address(scope)}"

    def client_address(self, scope: dict) -> str:
        peer = (scope.get("client") or ("unknown", 0))[0]
        if not self.proxies or not self._trusted(peer):
            return peer
        forwarded = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"]
        hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
        # walk back from the nearest hop; the first address not ours is the client
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)


def _rate_headers(d: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(d.limit).encode()),
        (b"ratelimit-remaining", str(d.remaining).encode()),
        (b"ratelimit-reset", str(math.ceil(d.reset)).encode()),
    ]


async def _too_many(send: Any, d: Decision) -> None:
    retry = max(1, math.ceil(d.retry_after))
    body = orjson.dumps({
        "code": "RS429", "details": f"The limit is {d.limit} requests; try again in {retry} s.",
        "hint": None, "message": "Too many requests",
    }, option=orjson.OPT_SORT_KEYS)
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry).encode()),
        *_rate_headers(d),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
