"""Counts and times every request with bounded labels, and offers the Prometheus scrape to the ops routes.

Labels never come from the raw request: the route is what an inner layer resolved and wrote to
``scope["state"]["route"]`` (the gateway: ``/``, ``/<relation>``, ``/rpc/<function>`` from its schema cache;
the ops routes: their fixed paths), else ``unmatched``; the method is one of a fixed set or ``OTHER``; the
status is its class (``2xx`` … ``5xx``). So the number of series is bounded by the schema, whatever
clients send.

Who may read ``/metrics`` is not decided here: for GET/HEAD on that path this middleware puts its
``scrape`` coroutine in ``scope["state"]["scrape"]`` and lets the request go on; the ops router serves it
(on the admin port, or to an admin on the API port) and labels it ``/metrics``, which is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from ..metrics import Metrics
from .errors import response_status

METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def status_label(status: int) -> str:
    """``2xx`` … ``5xx``; anything outside 100–599 counts as a server error."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "5xx"


class MetricsMiddleware:
    def __init__(self, app: Any, metrics: Metrics, before_scrape: Callable[[], Awaitable[None]] | None = None,
                 path: str = "/metrics") -> None:
        self.app = app
        self.metrics = metrics
        self.before_scrape = before_scrape
        self.path = path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if scope["path"] == self.path and scope["method"] in ("GET", "HEAD"):
            state["scrape"] = self.scrape
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = state.get("route") or UNMATCHED
            if route != self.path:  # scrapes are not traffic
                method = method_label(scope["method"])
                status = response_status(state)  # recorded by the outermost layer (middleware/errors.py)
                self.metrics.requests.labels(route, method, status_label(status)).inc()
                self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)

    async def scrape(self, send: Any, head: bool = False) -> None:
        """Send the exposition (Prometheus text format) as the response."""
        if self.before_scrape is not None:
            await self.before_scrape()
        body = self.metrics.exposition()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": b"" if head else body})
