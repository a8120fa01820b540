"""Limits shared by several gateway hosts: the same GCRA as ratelimit.py, as one atomic Lua script in Redis.

``REFERRAL_RATELIMIT_URL=redis://...`` selects it. Each check is one round trip (EVALSHA): the script reads the
client's TAT, decides and writes it back atomically, on Redis's clock (``TIME``), so hosts whose clocks
disagree still share one budget. Keys hold a hash of the client key (no addresses or subjects in Redis) and
expire when their bucket is full again. Requests in flight per client are a sorted set of request ids with
their start times; an id whose gateway died is forgotten after ``IN_FLIGHT_LEASE`` seconds.

When Redis does not answer (within ``TIMEOUT``), this host decides alone with its local table (ratelimit.py)
and says so once in the log and in ``referral_ratelimit_shared_store_up 0``; it asks Redis again every
``RETRY`` seconds. Serving goes on either way: a limit store must not become an outage.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .ratelimit import Decision, Rate, SharedLimiter

log = logging.getLogger("referral_service.gateway")

TIMEOUT = 0.25  # seconds for one Redis call (and connection), before this host decides alone
RETRY = 2.0  # seconds between attempts to reach Redis again
IN_FLIGHT_LEASE = 120  # seconds a request id holds its in-flight slot at most (a gateway that died frees it)
PREFIX = "referral:rl:"

# KEYS[1]: the client's TAT key; ARGV: interval, period (seconds). Returns allowed, ahead, retry-after
# (as strings: Redis would cut Lua numbers to integers).
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allowed = 0
if new_tat - now <= period then
  allowed = 1
  tat = new_tat
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
return {allowed, string.format('%.6f', tat - now), string.format('%.6f', new_tat - period - now)}
"""

# KEYS[1]: the client's in-flight set; ARGV: cap, request id, lease. Returns 1 when admitted.
ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lease)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], lease)
return 1
"""


def _key(kind: str, key: str) -> str:
    return PREFIX + kind + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def decision(rate: Rate, allowed: bool, ahead: float, retry: float) -> Decision:
    """The same numbers SharedLimiter.hit reports, from the script's answer."""
    interval = rate.period / rate.limit
    remaining = max(0, math.floor((rate.period - ahead) / interval + 1e-9))
    return Decision(allowed, rate.limit, remaining, max(0.0, ahead), 0.0 if allowed else max(0.0, retry))


class RedisLimiter:
    """Rate limits and in-flight caps in Redis, with this host's table as the fallback."""

    shared = True  # the middleware awaits hit_shared/enter/leave instead of calling hit

    def __init__(self, url: str, local: SharedLimiter, on_state: Callable[[bool], None] = lambda _up: None,
                 on_fallback: Callable[[], None] = lambda: None) -> None:
        # from_url refuses a malformed URL at once (ValueError); connecting happens on first use
        self.client = aioredis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                              retry_on_timeout=False)
        self.where = _where(url)
        self.local = local
        self._gcra = self.client.register_script(GCRA)
        self._enter = self.client.register_script(ENTER)
        self._down_until = 0.0
        self.up = True
        self._on_state, self._on_fallback = on_state, on_fallback
        self._local_in_flight: dict[str, int] = {}
        on_state(True)

    def hit(self, key: str, rate: Rate) -> Decision:  # the local table's interface, for callers that can't wait
        return self.local.hit(key, rate)

    async def hit_shared(self, key: str, rate: Rate) -> Decision:
        if self._available():
            try:
                allowed, ahead, retry = await self._gcra(keys=[_key("t:", key)], args=[rate.period / rate.limit,
                                                                                      rate.period])
                self._reached()
                return decision(rate, bool(int(allowed)), float(ahead), float(retry))
            except (RedisError, OSError) as exc:
                self._unreachable(exc)
        self._on_fallback()
        return self.local.hit(key, rate)

    async def enter(self, client: str, cap: int) -> str | None:
        """A token when one more request of `client` may run, None when `cap` already do."""
        token = secrets.token_hex(8)
        if self._available():
            try:
                admitted = await self._enter(keys=[_key("f:", client)], args=[cap, token, IN_FLIGHT_LEASE])
                self._reached()
                return "r" + token if int(admitted) else None
            except (RedisError, OSError) as exc:
                self._unreachable(exc)
        self._on_fallback()
        held = self._local_in_flight.get(client, 0)
        if held >= cap:
            return None
        self._local_in_flight[client] = held + 1
        return "l" + token

    async def leave(self, client: str, token: str) -> None:
        if token.startswith("l"):
            left = self._local_in_flight.get(client, 1) - 1
            if left > 0:
                self._local_in_flight[client] = left
            else:
                self._local_in_flight.pop(client, None)
            return
        try:
            await self.client.zrem(_key("f:", client), token[1:])
        except (RedisError, OSError) as exc:  # the lease frees it later
            self._unreachable(exc)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _available(self) -> bool:
        return self.up or time.monotonic() >= self._down_until

    def _reached(self) -> None:
        if not self.up:
            self.up = True
            self._on_state(True)
            log.warning("rate limits: Redis at %s answers again; limits are shared across hosts", self.where)

    def _unreachable(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY
        if self.up:
            self.up = False
            self._on_state(False)
            log.warning("rate limits: Redis at %s unreachable (%s); this host limits on its own until it answers",
                        self.where, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _where(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return "redis"


def limiter_for(url: str | None, local: SharedLimiter, metrics: Any) -> SharedLimiter | RedisLimiter:
    """``REFERRAL_RATELIMIT_URL`` set: the Redis store over `local`; else `local` itself."""
    if not url:
        return local
    return RedisLimiter(url, local, on_state=lambda up: metrics.ratelimit_shared.set(1 if up else 0),
                        on_fallback=metrics.ratelimit_fallbacks.inc)
