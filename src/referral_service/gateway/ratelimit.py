"""Rate limits shared by every worker process of one gateway: GCRA over a memory-mapped table.

Each client key holds one number, its "theoretical arrival time" (TAT). A request is allowed when the
new TAT lies at most one period ahead of now; that permits `limit` requests per `period`, as a burst or
spread out, and refills continuously. The table lives in a file that all workers map, in a folder only this
OS user can enter (``runtime_dir``); an exclusive `flock` around each check makes the read-modify-write atomic
across processes. The file is opened without following links, so nobody can point it at another file.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import stat
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .settings import SettingsError

SLOTS = 1 << 16  # distinct live clients tracked at once; older entries are evicted first
PROBES = 16
_SLOT = struct.Struct("<Qd")  # key hash (0 = empty), TAT (seconds, CLOCK_REALTIME)


class RuntimeStateError(SettingsError):
    """The folder or file for runtime state is not private to this user; the message says what to do."""


def runtime_dir() -> Path:
    """This user's private folder for runtime state: under ``$XDG_RUNTIME_DIR`` (systemd's per-user tmpfs)
    when set, else ``referral-service-<uid>`` on /dev/shm (memory-backed), created 0700 and checked."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    folder = Path(xdg) / "referral-service" if xdg else shm / f"referral-service-{os.getuid()}"
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeStateError(
            f"{folder} is not a private folder of this user (a link, another owner, or open to others): "
            "remove it, or set REFERRAL_RATELIMIT_FILE to a file in a folder only this user can write")
    return folder


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """`"300/60"` = 300 requests per 60 seconds; `"0"` or empty = no limit."""
        text = text.strip()
        if text in ("", "0", "off"):
            return None
        try:
            limit, _, period = text.partition("/")
            rate = cls(int(limit), float(period or 60))
        except ValueError:
            raise ValueError(f"rate limit must look like 300/60 (requests/seconds), got {text!r}") from None
        if rate.limit < 1 or rate.period <= 0:
            raise ValueError(f"rate limit must be positive, got {text!r}")
        return rate


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until the next request would be allowed (0 when allowed)


class SharedLimiter:
    """A GCRA limiter whose state every process opening the same `path` shares."""

    def __init__(self, path: Path) -> None:
        size = SLOTS * _SLOT.size
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:  # ELOOP: the name is a symbolic link
            raise RuntimeStateError(f"cannot open the rate-limit table {path}: {exc.strerror}") from None
        info = os.fstat(self._fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_nlink != 1:
            os.close(self._fd)
            raise RuntimeStateError(f"the rate-limit table {path} is not a private file of this user: remove it")
        if info.st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def hit(self, key: str, rate: Rate, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        interval = rate.period / rate.limit
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            offset, stored = self._find(digest, now)
            tat = max(stored, now)
            new_tat = tat + interval
            allowed = new_tat - now <= rate.period
            if allowed:
                _SLOT.pack_into(self._map, offset, digest, new_tat)
                tat = new_tat
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        ahead = tat - now  # how far the bucket is drained, in seconds
        remaining = max(0, math.floor((rate.period - ahead) / interval + 1e-9))
        retry = 0.0 if allowed else new_tat - rate.period - now
        return Decision(allowed, rate.limit, remaining, max(0.0, ahead), retry)

    def _find(self, digest: int, now: float) -> tuple[int, float]:
        """Slot offset for `digest` and its stored TAT (0 when new): its own slot, a free one, or the stalest."""
        start = digest % SLOTS
        candidate, candidate_tat = -1, math.inf
        for i in range(PROBES):
            offset = ((start + i) % SLOTS) * _SLOT.size
            key, tat = _SLOT.unpack_from(self._map, offset)
            if key == digest:
                return offset, tat
            if key == 0 or tat <= now:  # empty, or expired: a full bucket is the same as no entry
                if candidate_tat > -1:
                    candidate, candidate_tat = offset, -1
            elif tat < candidate_tat:
                candidate, candidate_tat = offset, tat
        return candidate, 0.0
