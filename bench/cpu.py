"""CPU seconds of process trees, read from /proc: the figure to optimise on a shared machine.

req/s moves by 10-30 % with whatever else runs on the 2 cores; the CPU a request costs each party barely moves.
A tree's CPU is, over its live processes, their own user+system time plus that of their children already reaped
(``cutime``/``cstime``): a PostgreSQL backend that exits during a run (pgbench's) is counted in the postmaster
once reaped, a live one in itself, so each process is counted exactly once, before and after.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_seconds(roots: Iterable[int]) -> float:
    """CPU seconds (user + system, reaped children included) of the trees under ``roots``."""
    ticks = 0
    for root in roots:
        for pid in descendants(root):
            fields = _stat(pid)
            if fields:  # after ")": state is [0]; utime, stime, cutime, cstime are [11:15]
                ticks += sum(int(v) for v in fields[11:15])
    return ticks / TICK


def children_seconds() -> float:
    """CPU seconds of this process's waited-for children (wrk, pgbench)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


class Meter:
    """CPU of the gateway, PostgreSQL, PgBouncer (when in the path) and the load generator over one run, in µs
    per request."""

    def __init__(self, gateway_root: int | None, postmaster: int, bouncer: int | None = None) -> None:
        self.gateway_root, self.postmaster, self.bouncer = gateway_root, postmaster, bouncer

    def __enter__(self) -> Meter:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.seconds = {k: end[k] - self._start[k] for k in end}

    def _sample(self) -> dict[str, float]:
        out = {"pg": tree_seconds([self.postmaster]), "load": children_seconds()}
        if self.gateway_root is not None:
            out["gateway"] = tree_seconds([self.gateway_root])
        if self.bouncer is not None:  # a daemon of its own (parent: init), in no tree above
            out["bouncer"] = tree_seconds([self.bouncer])
        return out

    def per_request(self, requests: int) -> dict[str, float]:
        """µs of CPU per request for each party (0 when nothing completed)."""
        return {k: round(v * 1e6 / requests, 1) if requests else 0.0 for k, v in self.seconds.items()}
