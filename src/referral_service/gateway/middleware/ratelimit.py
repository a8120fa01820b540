"""Per-client limits: request rates (429 with Retry-After and RateLimit-* headers, IETF draft fields) and
requests in flight.

The client is the JWT subject when a valid token is sent, else the client address; the address is
taken from X-Forwarded-For only when the direct peer is a configured trusted proxy. Strict targets
(sign-in, sign-up) get a second, much stricter limit against brute force and account spam, keyed on the
address even when a token is sent (rotating tokens or accounts must not multiply the attempts), and
classified on the target the gateway resolves (schema + function), never on the raw path.

The in-flight cap bounds the database work one client can hold at once (per worker process, as each
worker has its own pool): slow requests from one client cannot take every pooled connection.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..ratelimit import Decision, Rate, SharedLimiter
from ..target import Target

Identify = Callable[[str], str | None]  # Authorization header -> subject of a valid token, or None
Resolve = Callable[[dict], Target | None]  # scope -> the schema object the gateway would run


class RateLimitMiddleware:
    def __init__(self, app: Any, limiter: SharedLimiter, general: Rate | None, strict: Rate | None,
                 strict_targets: Iterable[str], trusted_proxies: Iterable[str], identify: Identify,
                 resolve: Resolve, max_in_flight: int = 0,
                 on_limited: Callable[[str], None] = lambda _name: None) -> None:
        self.app = app
        self.limiter = limiter
        self.general = general
        self.strict = strict
        self.strict_targets = frozenset(strict_targets)
        self.proxies = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies if p.strip()]
        self.identify = identify
        self.resolve = resolve
        self.max_in_flight = max_in_flight
        self.in_flight: dict[str, int] = {}
        self.on_limited = on_limited
        self.shared = getattr(limiter, "shared", False)  # Redis (ratelimit_redis.py): awaited, cap across hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = self.client_address(scope)
        scope.setdefault("state", {})["client_address"] = address
        if self.general is None and self.strict is None and not self.max_in_flight:
            await self.app(scope, receive, send)
            return
        client = self.client_key(scope, address)
        decision = None
        if self.strict is not None and self.strict_targets:
            target = self.resolve(scope)
            if target is not None and target.qualified in self.strict_targets:
                key = f"strict:{target.qualified}:ip:{address}"
                decision = await self.limiter.hit_shared(key, self.strict) if self.shared \
                    else self.limiter.hit(key, self.strict)
                if not decision.allowed:
                    self.on_limited("strict")
                    await _too_many(send, decision)
                    return
        if self.general is not None:
            general = await self.limiter.hit_shared(f"all:{client}", self.general) if self.shared \
                else self.limiter.hit(f"all:{client}", self.general)
            if not general.allowed:
                self.on_limited("general")
                await _too_many(send, general)
                return
            decision = decision or general
        headers = _rate_headers(decision) if decision is not None else []
        if not self.max_in_flight:
            await self._forward(scope, receive, send, headers)
            return
        if self.shared:
            await self._shared_in_flight(client, scope, receive, send, headers)
            return
        held = self.in_flight.get(client, 0)
        if held >= self.max_in_flight:
            self.on_limited("in_flight")
            await _too_many_at_once(send, self.max_in_flight)
            return
        self.in_flight[client] = held + 1
        try:
            await self._forward(scope, receive, send, headers)
        finally:
            left = self.in_flight[client] - 1
            if left:
                self.in_flight[client] = left
            else:
                del self.in_flight[client]  # the table holds only clients with requests in flight

    async def _forward(self, scope: dict, receive: Any, send: Any, headers: list[tuple[bytes, bytes]]) -> None:
        """The request goes on; its response carries ``headers`` (added by the outermost layer,
        middleware/errors.py). A refusal here sends its own headers instead."""
        if headers:
            scope["state"].setdefault("add_headers", []).extend(headers)
        await self.app(scope, receive, send)

    async def _shared_in_flight(self, client: str, scope: dict, receive: Any, send: Any,
                                headers: list[tuple[bytes, bytes]]) -> None:
        """The in-flight cap counted in Redis: one budget per client across every gateway host and worker."""
        token = await self.limiter.enter(client, self.max_in_flight)
        if token is None:
            self.on_limited("in_flight")
            await _too_many_at_once(send, self.max_in_flight)
            return
        try:
            await self._forward(scope, receive, send, headers)
        finally:
            await self.limiter.leave(client, token)

    def client_key(self, scope: dict, address: str) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization":
                subject = self.identify(value.decode("latin-1"))
                if subject:
                    return f"sub:{subject}"
                break
        return f"ip:{address}"

    def client_address(self, scope: dict) -> str:
        peer = (scope.get("client") or ("unknown", 0))[0]
        if not self.proxies or not self._trusted(peer):
            return peer
        forwarded = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"]
        hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
        # walk back from the nearest hop; the first address not ours is the client
        for hop in reversed(hops):
            try:
                ip = ipaddress.ip_address(hop)
            except ValueError:
                return peer  # garbage in the chain: believe only the proxy that sent it
            if not any(ip in net for net in self.proxies):
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
    await _refuse(send, f"The limit is {d.limit} requests; try again in {retry} s.", retry, _rate_headers(d))


async def _too_many_at_once(send: Any, limit: int) -> None:
    await _refuse(send, f"At most {limit} requests of one client run at once; wait for one to finish.", 1, [])


async def _refuse(send: Any, details: str, retry: int, extra: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"code": "RS429", "details": details, "hint": None, "message": "Too many requests"},
                        option=orjson.OPT_SORT_KEYS)
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
