#!/usr/bin/env python3
"""Soak: a mixed read/write load for a while; reports throughput, errors (must be 0) and the gateway's memory.

    .venv/bin/python scripts/soak.py --minutes 10        # starts its own gateway on the local database
    .venv/bin/python scripts/soak.py --url http://127.0.0.1:3000 --pid 1234   # an already running one

Exit status 1 when any request failed or the gateway's memory grew (end > start * 1.25 + 16 MiB).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from referral_service import config, localdb, provision

MIX = [  # (weight, name): reads dominate, as for the site; writes are events and admin edits
    (55, "list_offers"), (15, "search"), (10, "one_offer"), (15, "log_view"), (5, "admin_edit")]


def rss_kib(pid: int) -> int:
    """Resident memory of the gateway and its children (uvicorn workers), in KiB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_gateway(workers: int) -> tuple[str, subprocess.Popen]:
    port = localdb.free_port()
    admin = localdb.free_port()  # the admin server (/ready, /metrics)
    env = {**os.environ, "REFERRAL_RATE_LIMIT": "0", "REFERRAL_AUTH_RATE_LIMIT": "0",
           "REFERRAL_CLIENT_MAX_IN_FLIGHT": "0",
           "PGRST_ADMIN_SERVER_PORT": str(admin)}
    log = tempfile.NamedTemporaryFile(prefix="soak-gateway-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "referral_service.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    sys.exit(f"gateway did not become ready; log: {log.name}")


class Soak:
    def __init__(self, url: str, admin_token: str, offers: list[str]) -> None:
        self.url, self.admin, self.offers = url, admin_token, offers
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def one(self, c: httpx.Client, name: str) -> httpx.Response:
        offer = random.choice(self.offers)
        if name == "list_offers":
            return c.get("/offers?status=eq.active&order=created_at.desc&limit=20")
        if name == "search":
            return c.post("/rpc/search_offers", json={"search_term": random.choice(["bank", "card", "bonus"])})
        if name == "one_offer":
            return c.get(f"/offers?id=eq.{offer}", headers={"Accept": "application/vnd.pgrst.object+json"})
        if name == "log_view":
            return c.post("/rpc/log_event", json={"event_type": "offer_view", "event_data": {"offer_id": offer}})
        return c.patch(f"/offers?id=eq.{offer}", json={"requirements": f"soak edit {random.random()}"},
                       headers={"Authorization": f"Bearer {self.admin}"})

    def worker(self) -> None:
        names, weights = [n for _, n in MIX], [w for w, _ in MIX]
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self.stop.is_set():
                name = random.choices(names, weights)[0]
                t0 = time.perf_counter()
                try:
                    r = self.one(c, name)
                    # one soak client is one visitor: past 60 events a minute log_event answers 429, by design
                    expected = r.status_code < 300 or (name == "log_view" and r.status_code == 429)
                    bad = None if expected else f"{name} {r.status_code} {r.text[:120]}"
                except httpx.HTTPError as exc:
                    bad = f"{name} {type(exc).__name__}"
                took = time.perf_counter() - t0
                with self.lock:
                    self.counts[name] += 1
                    self.latencies.append(took)
                    if bad:
                        self.errors[bad] += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="gateway workers when the script starts the gateway")
    ap.add_argument("--url", help="an already running gateway (default: start one)")
    ap.add_argument("--pid", type=int, help="its process id, for the memory figures")
    args = ap.parse_args()

    proc = None
    url, pid = args.url, args.pid
    if not url:
        url, proc = start_gateway(args.workers)
        pid = proc.pid
    try:
        secrets = config.load_secrets()
        r = httpx.post(url + "/rpc/login", json={"email": provision.DEMO_ADMIN_EMAIL,
                                                  "password": secrets.demo_admin_password}, timeout=10)
        r.raise_for_status()
        offers = [o["id"] for o in httpx.get(url + "/offers?status=eq.active&select=id&limit=50", timeout=10).json()]
        if not offers:
            sys.exit("no active offers: run `referral-service setup` (demo data) first")
        soak = Soak(url, r.json()["access_token"], offers)  # 1 h: longer soaks need REFERRAL_ACCESS_TOKEN_TTL
        threads = [threading.Thread(target=soak.worker, daemon=True) for _ in range(args.threads)]
        for t in threads:
            t.start()
        duration = args.minutes * 60
        warmup = min(30.0, duration / 10)
        time.sleep(warmup)  # memory "at start" once caches and pools are warm
        rss_start = rss_kib(pid) if pid else 0
        done_at_start = sum(soak.counts.values())
        t_start = time.monotonic()
        samples = [rss_start]
        while time.monotonic() - t_start < duration - warmup:
            time.sleep(min(10.0, max(0.1, duration - warmup - (time.monotonic() - t_start))))
            samples.append(rss_kib(pid) if pid else 0)
            total = sum(soak.counts.values())
            print(f"  {time.monotonic() - t_start + warmup:6.0f}s  {total} requests  "
                  f"{sum(soak.errors.values())} errors  rss {samples[-1] / 1024:.1f} MiB", flush=True)
        soak.stop.set()
        for t in threads:
            t.join(35)
        elapsed = time.monotonic() - t_start
        rss_end = rss_kib(pid) if pid else 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)

    total = sum(soak.counts.values())
    errors = sum(soak.errors.values())
    lat = sorted(soak.latencies)
    print(f"\nsoak: {args.minutes:g} min, {args.threads} client threads against {url}")
    print(f"  requests    {total}  ({(total - done_at_start) / elapsed:.0f}/s after warm-up)  "
          + ", ".join(f"{k} {v}" for k, v in soak.counts.most_common()))
    print(f"  latency     p50 {statistics.median(lat) * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms")
    print(f"  errors      {errors}" + "".join(f"\n    {n}x {e}" for e, n in soak.errors.most_common(10)))
    grew = False
    if pid:
        grew = rss_end > rss_start * 1.25 + 16 * 1024
        print(f"  memory      start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB, "
              f"max {max(samples) / 1024:.1f} MiB -> {'GREW' if grew else 'flat'}")
    return 1 if errors or grew else 0


if __name__ == "__main__":
    sys.exit(main())
