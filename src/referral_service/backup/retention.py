"""Which dumps exist and which to delete: names carry their UTC time, so they sort oldest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from .common import BackupError

DEFAULT_PREFIX = "referral_service"
STAMP = "%Y%m%dT%H%M%SZ"


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name.removesuffix(".dump") + ".manifest.json")


def stamp_time(dump: Path) -> datetime:
    stamp = dump.name.removesuffix(".dump").rsplit("-", 1)[-1]
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)


def dumps_in(out_dir: str | Path, prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Complete dumps in `out_dir`, oldest first (the timestamp in the name sorts lexically)."""
    pattern = re.compile(rf"{re.escape(prefix)}-\d{{8}}T\d{{6}}Z\.dump")
    return sorted(p for p in Path(out_dir).iterdir() if pattern.fullmatch(p.name) and p.is_file())


def check_keep(keep: int | None) -> None:
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1 (it counts the dumps to keep, the new one included)")


def apply_retention(out_dir: str | Path, keep: int, prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Delete all but the newest `keep` dumps (and their manifests); return what was deleted.

    Failed dumps (`*.dump.failed`) and other files are never counted nor deleted.
    """
    check_keep(keep)
    doomed = dumps_in(out_dir, prefix)[:-keep]
    for dump in doomed:
        dump.unlink()
        manifest_path(dump).unlink(missing_ok=True)
    return doomed
