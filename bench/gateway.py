"""Start the service's gateway (`referral-service serve`) against a bench database; read its memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from referral_service import localdb

SERVE = Path(sys.executable).with_name("referral-service")


class Gateway:
    def __init__(self, db_url: str, jwt_secret: str, workers: int, pool: int,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = localdb.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{localdb.free_port()}"  # the admin server: /ready, /metrics
        self.env = {
            **os.environ, "PGRST_DB_URI": db_url, "PGRST_JWT_SECRET": jwt_secret, "PGRST_DB_SCHEMAS": "api",
            "PGRST_DB_ANON_ROLE": "anonymous", "PGRST_DB_POOL": str(pool),
            "PGRST_SERVER_PORT": str(self.port),
            "PGRST_DB_MAX_ROWS": "1000",  # as before no-limit became the default: keeps W3 comparable
            "PGRST_ADMIN_SERVER_PORT": self.admin.rsplit(":", 1)[1],
            # The per-client limits run as deployed (issue 17: the hardening stays in the measured path), with
            # budgets the bench, one client at thousands of requests per second, never reaches.
            "REFERRAL_RATE_LIMIT": "1000000000/1", "REFERRAL_AUTH_RATE_LIMIT": "1000000000/1",
            "REFERRAL_CLIENT_MAX_IN_FLIGHT": "1000",
            **(extra_env or {}),  # e.g. the PgBouncer path's listen URI and prepared statements off
        }
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self, log: Path, timeout: float = 30) -> None:
        """Start and wait for /ready; the server's stderr goes to `log` (access log lines to /dev/null)."""
        cmd = [str(SERVE), "serve", "--port", str(self.port), "--workers", str(self.workers)]
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.tail()}")
            try:
                with urllib.request.urlopen(self.admin + "/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gateway not ready in time")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def pids(self) -> list[int]:
        """The server process and all its descendants (uvicorn's workers)."""
        assert self.proc is not None
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def rss_mb(self) -> dict[int, float]:
        """VmRSS of each process, in MB."""
        out = {}
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[pid] = int(line.split()[1]) / 1024
            except OSError:
                pass
        return out
