"""`Server: postgrest/<version>` on every response, errors included (issue 13 item 9)."""

from __future__ import annotations


def test_server_header_everywhere(default):
    for r in (default.get("/items?id=eq.1"), default.get("/nothing"), default.get("/items", headers={"Accept": "x/y"}),
              default.options("/items"), default.get("/")):
        assert r.headers.get_list("server") == ["postgrest/13.0.8"], (r.status_code, r.headers)
