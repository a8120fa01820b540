"""Starting a real gateway process for tests, directly or behind a real PgBouncer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from referral_service import localdb
from referral_service.pgbouncer import Bouncer


def with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def fresh_database(superuser_dsn: str, dbname: str, schema_sql: str) -> str:
    """Drop and create `dbname` on the test server, run `schema_sql` in it; its superuser URL."""
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    url = with_database(superuser_dsn, dbname)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql)
    return url


def with_login(url: str, user: str, password: str, dbname: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}:{port or parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{dbname}" if dbname else parts.path))


@contextmanager
def bouncer_for(db_url: str, users: dict[str, str], home: Path) -> Iterator[Bouncer]:
    """A real PgBouncer in transaction mode in front of the server of `db_url`."""
    parts = urlsplit(db_url)
    bouncer = Bouncer(db_port=parts.port or 5432, port=localdb.free_port(), home=home, pool_size=8)
    bouncer.start(users)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@dataclass
class GatewayProcess:
    """A running gateway: its URL, and the process handle for tests that signal it or read its memory."""

    url: str
    proc: subprocess.Popen
    log: Path
    admin_url: str | None = None  # the admin server (/live, /ready, /metrics) of the service; None for the bare gateway

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


ADMIN_PATHS = ("/live", "/ready", "/metrics")


@contextmanager
def gateway_process(env: dict[str, str], log_path: Path, ready_path: str = "/ready",
                    module: str = "referral_service.service") -> Iterator[GatewayProcess]:
    """Run the service (or with `module`, the bare gateway) with `env` until `ready_path` answers 200;
    SIGTERM at the end. The service gets an admin port of its own: /live, /ready and /metrics are waited
    for there, any other `ready_path` on the API port."""
    port = localdb.free_port()
    full_env = {**os.environ, "PGRST_SERVER_HOST": "127.0.0.1", "PGRST_SERVER_PORT": str(port), **env}
    admin_url = None
    if module == "referral_service.service":
        full_env.setdefault("PGRST_ADMIN_SERVER_PORT", str(localdb.free_port()))
        admin_url = f"http://127.0.0.1:{full_env['PGRST_ADMIN_SERVER_PORT']}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", module], env=full_env, stdout=log, stderr=subprocess.STDOUT)
    gw = GatewayProcess(f"http://127.0.0.1:{port}", proc, log_path, admin_url)
    try:
        base = admin_url if admin_url and ready_path in ADMIN_PATHS else gw.url
        _wait_ready(proc, base + ready_path, log_path)
        yield gw
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gateway did not become ready: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)


def in_parallel(task: Callable[[], object], count: int) -> list:
    """Run `task` `count` times at once (one thread each); its results in completion order."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: task(), range(count)))


@contextmanager
def throwaway_cluster(name: str) -> Iterator[localdb.Cluster]:
    """A new, running cluster `name-<pid>` on a free port, destroyed afterwards."""
    cluster = localdb.Cluster(name=f"{name}-{os.getpid()}", port=localdb.free_port())
    cluster.destroy()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def explained(db: psycopg.Connection, query: str, params=(), off: tuple[str, ...] = ("bitmapscan",)) -> dict:
    """The executed plan of `query` (EXPLAIN ANALYZE, JSON) with the planner's `enable_<x>` off for each x in
    `off`, for this transaction: tests check a plan's shape, not its cost choice on the data at hand."""
    for method in off:
        db.execute(f"set local enable_{method} = off")
    rows = db.execute("explain (analyze, timing off, costs off, format json) " + query, params).fetchone()[0]
    return rows[0]["Plan"]


def plan_nodes(node: dict) -> Iterator[dict]:
    """`node` and every node below it."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)

