"""The operations dashboard: static files (HTML, JS, CSS) that call the gateway's own API.

``dashboard_app`` is a pure ASGI app serving them. Mount it under a prefix (e.g. ``/dashboard``): it only
looks at the last path segment, so it works whether or not the mount strips the prefix. The page reaches
the API one level above itself (``/dashboard/`` → ``/rpc/...``, ``/metrics``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
FILES = ("index.html", "app.js", "charts.js", "dom.js", "metrics.js", "ops.js", "status.js", "style.css")

# Everything the page loads is its own: no inline code, no third-party origin, no framing.
SECURITY_HEADERS = [
    (b"content-security-policy", (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # small files that change with each deploy: revalidate rather than serve a stale page
    (b"cache-control", b"no-cache"),
]


def _plain(status: int, text: str, extra: list[tuple[bytes, bytes]] = ()) -> tuple[int, list, bytes]:
    body = text.encode()
    return status, [(b"content-type", b"text/plain; charset=utf-8"), *extra], body


class DashboardApp:
    """Serves the dashboard files from memory (read once at construction)."""

    def __init__(self, folder: Path = HERE) -> None:
        self.files = {name: (TYPES[Path(name).suffix].encode(), (folder / name).read_bytes()) for name in FILES}

    def respond(self, method: str, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if method not in ("GET", "HEAD"):
            return _plain(405, "method not allowed", [(b"allow", b"GET, HEAD")])
        name = path.rsplit("/", 1)[-1] or "index.html"
        if name in self.files:
            content_type, body = self.files[name]
            return 200, [(b"content-type", content_type), *SECURITY_HEADERS], body
        if not path.endswith("/") and _PLAIN_SEGMENT.fullmatch(name):
            # `/dashboard` → `/dashboard/`, so that the page's relative URLs resolve inside the mount;
            # a relative Location needs no knowledge of the prefix. Only letters, digits, `-` and `_`: a
            # backslash, slash, colon or percent sign could turn the Location into another origin.
            return _plain(308, "", [(b"location", (name + "/").encode())])
        return _plain(404, "not found")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        root, path = scope.get("root_path", ""), scope["path"]
        # Starlette's Mount keeps the whole path in `path`; other routers move the prefix to root_path
        full = path if root and path.startswith(root) else root + path
        status, headers, body = self.respond(scope["method"], full)
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


dashboard_app = DashboardApp()
