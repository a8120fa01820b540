"""Private files: every backup file is 0600 in a 0700 folder from the moment it exists.

A dump holds every user's data; whoever can read it can read the database. So nothing here relies on the
umask: files are created with their final mode (O_EXCL, never following a link), written whole and renamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from .common import BackupError

LAST_SUCCESS_FILE = "last_success.json"
METRICS_FILE = "referral_backup.prom"
FOLDER_MODE = 0o700
FILE_MODE = 0o600

Warn = Callable[[str], None]


def private_folder(out_dir: str | Path, warn: Warn | None = None) -> Path:
    """The backup folder, created 0700; an existing one open to others is tightened (and said so).

    A folder that others can enter and that is not ours to tighten is refused: its dumps would be readable.
    Backup files already in it (written by an older version, say) are made 0600 as well. A folder that cannot
    be made or written (a read-only disk, a path through a file) is one BackupError, found before any dump.
    """
    out = Path(out_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            out.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            pass
        if not out.is_dir():
            raise BackupError(f"backup folder {out} is not a folder")
        _tighten(out, warn)
        _probe_writable(out)
    except OSError as exc:
        raise BackupError(f"backup folder {out} cannot be used: {exc.strerror or exc}") from None
    return out


def _tighten(out: Path, warn: Warn | None) -> None:
    info = out.stat()
    if info.st_mode & 0o077:
        if info.st_uid != os.geteuid():
            raise BackupError(f"backup folder {out} is open to other users (mode {info.st_mode & 0o777:o}) and "
                              f"belongs to uid {info.st_uid}: make it 0700 or choose another folder")
        out.chmod(FOLDER_MODE)
        if warn:
            warn(f"backup folder {out} was mode {info.st_mode & 0o777:o}: tightened to 0700")
    loose = [p for p in out.iterdir() if is_backup_file(p) and p.is_file() and not p.is_symlink()
             and p.stat().st_mode & 0o077]
    for path in loose:
        path.chmod(FILE_MODE)
    if loose and warn:
        warn(f"{len(loose)} backup file(s) in {out} were readable by others: now 0600")


def _probe_writable(out: Path) -> None:
    """Write and remove a file: only that tells a read-only mount or a full quota from a writable folder."""
    probe = out / ".write-probe.tmp"
    os.close(create_private(probe))
    probe.unlink()


def is_backup_file(path: Path) -> bool:
    name = path.name
    return (name in (LAST_SUCCESS_FILE, METRICS_FILE) or ".dump" in name or name.endswith(".manifest.json")
            or name.endswith((".partial", ".tmp")))


def create_private(path: Path) -> int:
    """A new file, 0600 from its creation (O_EXCL: never someone else's file, O_NOFOLLOW: never a link)."""
    try:
        path.unlink()  # a leftover of an interrupted run
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temporary file, then rename), 0600 throughout."""
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(create_private(tmp), "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, payload: dict) -> None:
    write_private(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
