"""Metrics have bounded cardinality (issue 10, item 3): a hostile burst of unknown paths, odd methods and
unusual statuses adds no series, so /metrics stays small and quick to scrape whatever clients send.

Labels: route from the schema cache (or a fixed ops route, or `unmatched`), method from a fixed set (or
`OTHER`), status as its class."""

from __future__ import annotations

import concurrent.futures
import random
import re
import string
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import GatewayProcess, gateway_process

SERIES = re.compile(r"^(referral_http_requests_total|referral_http_request_duration_seconds_bucket)\{(.*)\}",
                    re.MULTILINE)
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
METHODS = {"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS", "OTHER"}
STATUSES = {"2xx", "3xx", "4xx", "5xx"}


@pytest.fixture(scope="module")
def gw(security_db, tmp_path_factory) -> Iterator[GatewayProcess]:
    with gateway_process(security_db.app_env(), tmp_path_factory.mktemp("cardinality") / "gateway.log") as gw:
        yield gw


def scrape(gw: GatewayProcess) -> tuple[str, float]:
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        reply = httpx.get(gw.admin_url + "/metrics", timeout=10)
        timings.append(time.perf_counter() - started)
        assert reply.status_code == 200
    return reply.text, sorted(timings)[2]


def series(text: str) -> set[str]:
    return {m.group(0) for m in SERIES.finditer(text)}


def word(rng: random.Random, n: int = 10) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def hostile(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    """An unknown path, an odd method or an unusual status (406, 405, 416, 400, 414...)."""
    choice = rng.randrange(8)
    if choice == 0:
        return "GET", f"/{word(rng)}", {}
    if choice == 1:
        return rng.choice(["PURGE", "FOO", f"M{word(rng, 6).upper()}", "PROPFIND"]), f"/{word(rng)}", {}
    if choice == 2:
        return "GET", f"/rpc/{word(rng)}", {"Accept": f"application/{word(rng, 5)}"}  # unknown + 406
    if choice == 3:
        return "GET", f"/{word(rng)}/{word(rng)}/{word(rng)}", {}
    if choice == 4:
        return "GET", f"/offers?{word(rng)}=eq.1", {"Range": "9-1"}  # a real route, odd statuses
    if choice == 5:
        return "DELETE", f"/{word(rng)}%2F{word(rng)}", {}
    if choice == 6:
        return rng.choice(["GET", "TRACE", "CONNECTX"]), f"/rpc/{word(rng)}/{word(rng)}", {}
    return "POST", f"/rpc/{word(rng)}", {"Content-Type": f"text/{word(rng, 4)}"}


def burst(gw: GatewayProcess, seed: int, n: int) -> None:
    rng = random.Random(seed)
    requests = [hostile(rng) for _ in range(n)]

    def send(chunk: list[tuple[str, str, dict[str, str]]]) -> None:
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            for method, path, headers in chunk:
                client.request(method, path, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(send, [requests[i::4] for i in range(4)]))


def test_a_hostile_burst_adds_no_series(gw):
    httpx.get(gw.url + "/offers?limit=1")  # the routes a normal client uses
    burst(gw, 1, 300)  # every label value the burst can produce, once
    before, _ = scrape(gw)
    burst(gw, 2, 2500)
    after, took = scrape(gw)
    print(f"\n/metrics: {len(series(before))} -> {len(series(after))} series, {len(before)} -> {len(after)} bytes, "
          f"scrape {took * 1000:.1f} ms")
    assert series(after) == series(before), sorted(series(after) - series(before))[:10]
    assert len(after) < len(before) + 2000  # counters grow in digits, not in lines
    assert len(after) < 100_000 and took < 0.25, (len(after), took)
    for labels in series(after):
        found = dict(LABEL.findall(labels))
        assert found["method"] in METHODS
        assert found.get("status", "2xx") in STATUSES
        route = found["route"]
        assert route in {"unmatched", "/live", "/ready", "/dashboard", "/"} or re.fullmatch(r"/(rpc/)?\w+", route)
        assert route == "unmatched" or len(route) < 40


def test_the_burst_is_counted_under_fixed_labels(gw):
    text, _ = scrape(gw)
    assert re.search(r'referral_http_requests_total\{method="OTHER",route="unmatched",status="4xx"\} \d', text)
    assert 'route="/offers",status="4xx"' in text  # a real route keeps its name, whatever the error
    assert not re.search(r'method="(PURGE|FOO|TRACE)"', text) and 'status="404"' not in text
