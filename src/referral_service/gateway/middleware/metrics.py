"""Counts and times every request by route template, and serves GET /metrics (Prometheus text format)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from ..metrics import Metrics


def route_template(path: str, status: int) -> str:
    """A bounded label: `/`, `/<relation>` or `/rpc/<function>` for paths that exist, else `other`."""
    if status == 404:
        return "other"
    parts = path.strip("/").split("/")
    if parts == [""]:
        return "/"
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "rpc"):
        return "/" + "/".join(parts)
    return "other"


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
        if scope["path"] == self.path and scope["method"] in ("GET", "HEAD"):
            await self._scrape(send, scope["method"] == "HEAD")
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = route_template(scope["path"], status)
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)

    async def _scrape(self, send: Any, head: bool) -> None:
        if self.before_scrape is not None:
            await self.before_scrape()
        body = self.metrics.exposition()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": b"" if head else body})
