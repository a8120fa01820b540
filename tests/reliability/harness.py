"""Processes the fault tests start, stop and kill: a throwaway PostgreSQL cluster, gateways, a load loop."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import psycopg

from referral_service import localdb


def kill9_postmaster(cluster: localdb.Cluster) -> None:
    """SIGKILL the postmaster (a crash, not a shutdown), then wait for its orphaned backends to exit."""
    pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # orphans keep the shared memory attached; a new postmaster refuses to start until they are gone
        out = subprocess.run(["pgrep", "-f", f"postgres.*{cluster.port}|{cluster.pgdata}"],
                             capture_output=True, text=True).stdout.split()
        if not [p for p in out if p and int(p) != os.getpid()]:
            return
        time.sleep(0.1)


def start_cluster(cluster: localdb.Cluster, attempts: int = 50) -> None:
    """Start, retrying while a crashed server's leftovers (shared memory, port) are still being released."""
    for i in range(attempts):
        try:
            cluster.start()
            return
        except Exception:  # noqa: BLE001 - retried, then raised
            if i == attempts - 1:
                raise
            time.sleep(0.2)


def wait_for(check: Callable[[], bool], timeout: float, what: Callable[[], str] | str = "condition",
             proc: subprocess.Popen | None = None) -> float:
    """Poll until `check()`; returns the seconds it took."""
    t0 = time.monotonic()
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited: {what() if callable(what) else what}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s: {what() if callable(what) else what}")
        time.sleep(0.1)
    return time.monotonic() - t0


@dataclass
class Outcome:
    at: float  # monotonic start of the request
    elapsed: float
    status: int  # 0: no HTTP response (connection refused, timeout)
    code: str | None = None
    retry_after: str | None = None


@dataclass
class Load:
    """Threads sending `request(client)` in a loop and recording every outcome until stopped."""

    url: str
    request: Callable[[httpx.Client], httpx.Response]
    threads: int = 4
    timeout: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = self.request(client)
                    code = r.json().get("code") if r.status_code >= 400 and r.content[:1] == b"{" else None
                    self.outcomes.append(Outcome(t0, time.monotonic() - t0, r.status_code, code,
                                                 r.headers.get("retry-after")))
                except httpx.HTTPError:
                    self.outcomes.append(Outcome(t0, time.monotonic() - t0, 0))
                    time.sleep(0.05)

    @contextmanager
    def running(self) -> Iterator[Load]:
        workers = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for w in workers:
            w.start()
        try:
            yield self
        finally:
            self._stop.set()
            for w in workers:
                w.join(self.timeout + 5)

    def between(self, start: float, end: float = float("inf")) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.at < end]


def backends(dsn: str, user: str) -> list[tuple[str, str | None]]:
    """(state, query) of the server processes `user` holds, from pg_stat_activity."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("select state, query from pg_stat_activity where usename = %s and pid <> pg_backend_pid()",
                            [user]).fetchall()
