"""Is the database reachable? One flag the request path reads, and a probe that clears it.

A failed connection (or a failed connection attempt by the pool) sets ``down``. While it is set, requests are
refused at once with 503 + Retry-After instead of queueing for a pool that cannot grow. A background probe
connects the way requests do (through PgBouncer when there is one) and clears the flag as soon as a query
gets through; it then has the pool replace its dead connections. Recovery therefore takes one probe
interval, not psycopg_pool's exponential reconnect backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from . import errors

log = logging.getLogger("referral_service.gateway")

Probe = Callable[[], Awaitable[None]]


class DbHealth:
    def __init__(self, probe: Probe, on_recovery: Probe, *, first_delay: float = 0.2, max_delay: float = 1.0,
                 probe_timeout: float = 3.0) -> None:
        self.down = False
        self.reason = ""
        self._probe, self._on_recovery = probe, on_recovery
        self._first, self._max, self._timeout = first_delay, max_delay, probe_timeout
        self._since = 0.0
        self._task: asyncio.Task | None = None

    def failed(self, reason: object) -> None:
        """Report a lost connection or a failed connection attempt (idempotent while down)."""
        self.reason = _first_line(reason)
        if self.down:
            return
        self.down = True
        self._since = time.monotonic()
        log.warning("database unreachable (%s); refusing requests until a probe gets through", self.reason)
        self._task = asyncio.get_running_loop().create_task(self._probe_until_up())

    def error(self) -> errors.ApiError:
        return errors.connection_error(self.reason)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass

    async def _probe_until_up(self) -> None:
        delay = self._first
        while True:
            try:
                await asyncio.wait_for(self._probe(), self._timeout)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "still down"
                self.reason = _first_line(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max)
        try:
            await asyncio.wait_for(self._on_recovery(), self._timeout)
        except Exception as exc:  # noqa: BLE001 - the pool replaces what it could not check on first use
            log.warning("after recovery, checking the pool failed: %s", exc)
        self.down = False
        self._task = None
        log.warning("database reachable again after %.1fs", time.monotonic() - self._since)


def _first_line(reason: object) -> str:
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__


def reports_connection_loss(err: errors.ApiError) -> bool:
    """Errors that mean the database (or the pooler in front of it) is gone, not that a request was bad."""
    code = err.code or ""
    return err.status == 503 and (code in ("PGRST000", "PGRST001") or code.startswith(("08", "57P")))


def tracked_connection_class(health: DbHealth) -> type[psycopg.AsyncConnection]:
    """The pool's connection class: a failed connection attempt marks the database down at once, so that
    requests stop queueing for the pool (which retries in the background) and get their 503 now."""

    class TrackedConnection(psycopg.AsyncConnection):
        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                return await super().connect(*args, **kwargs)
            except psycopg.OperationalError as exc:
                health.failed(exc)
                raise

    return TrackedConnection
