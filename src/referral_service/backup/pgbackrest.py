"""Point-in-time recovery of the local cluster with pgBackRest: WAL archiving, full/incremental backups, restore.

pgBackRest (Debian package `pgbackrest`) does the work; this module only configures it for the project's
cluster and drives it. Everything lives in one folder beside the cluster, `<data dir>/pgbackrest/`:

    pgbackrest.conf   written from pitr.json and the cluster at every start (so a new port reaches it)
    pitr.json         what `pitr enable` chose (the repository path)
    conf.d/*.conf     the operator's own options, e.g. an S3-compatible repository (docs/operations.md)
    repo/             the default repository (REFERRAL_PGBACKREST_REPO puts it elsewhere)
    log/ lock/ spool/ pgBackRest's own files

PostgreSQL archives WAL through `archive_command` (localdb writes `server_settings()` into referral.conf), and
pgBackRest runs as the cluster's OS user, like the server (see localdb.run_as_service_user).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import localdb
from ..errors import OperatorError
from .common import BackupError

STANZA = "referral"
KINDS = ("full", "diff", "incr")
PROMOTE_TIMEOUT = 120.0  # seconds to wait for recovery to reach its target and promote
Say = Callable[[str], None]


@dataclass(frozen=True)
class BackupSet:
    label: str
    kind: str
    started_at: datetime
    stopped_at: datetime
    size_bytes: int  # as stored in the repository (compressed, and only the changes for diff/incr)


@dataclass(frozen=True)
class Info:
    backups: list[BackupSet]
    wal_min: str | None
    wal_max: str | None
    status: str


def pgbackrest_bin() -> str:
    found = shutil.which("pgbackrest")
    if not found:
        raise BackupError("pgbackrest not found: install it (sudo apt-get install -y pgbackrest)")
    return found


@dataclass(frozen=True)
class Pitr:
    """pgBackRest for one local cluster."""

    cluster: localdb.Cluster

    @property
    def home(self) -> Path:
        return self.cluster.data_dir / "pgbackrest"

    @property
    def place(self) -> Path:
        return self.home.resolve()

    @property
    def config_file(self) -> Path:
        return self.place / "pgbackrest.conf"

    def enabled(self) -> bool:
        return (self.place / "pitr.json").is_file()

    def repo(self) -> Path:
        try:
            return Path(json.loads((self.place / "pitr.json").read_text())["repo"])
        except (OSError, ValueError, KeyError):
            return Path(os.environ.get("REFERRAL_PGBACKREST_REPO") or self.place / "repo")

    # -- configuration ---------------------------------------------------------------------------

    def enable(self) -> None:
        """Choose the repository and write the configuration; the server archives from its next start."""
        pgbackrest_bin()
        place = localdb.service_folder(self.home)
        repo = Path(os.environ.get("REFERRAL_PGBACKREST_REPO") or place / "repo")
        for folder in (repo, place / "conf.d", place / "log", place / "lock", place / "spool"):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            localdb.give_to_service_user(folder)
        (place / "pitr.json").write_text(json.dumps({"repo": str(repo), "stanza": STANZA}) + "\n")
        self.write_config()

    def write_config(self) -> None:
        place, cluster = self.place, self.cluster
        retention = os.environ.get("REFERRAL_PGBACKREST_RETENTION_FULL", "2")
        lines = [
            "# written by referral-service at every start of the cluster; add your own options in conf.d/",
            "[global]",
            f"repo1-path={self.repo()}",
            f"repo1-retention-full={retention}",  # expire older full backups (and their WAL) after each backup
            "start-fast=y",  # an immediate checkpoint: a backup starts now, not at the next scheduled one
            "compress-type=zst",
            f"log-path={place / 'log'}",
            f"lock-path={place / 'lock'}",
            f"spool-path={place / 'spool'}",
            "log-level-console=warn",
            "log-level-file=info",
            "",
            f"[{STANZA}]",
            f"pg1-path={cluster.pgdata}",
            f"pg1-port={cluster.port}",
            f"pg1-socket-path={cluster.place / 'run'}",
            "pg1-user=postgres",
        ]
        # pgBackRest refuses an option set twice: the operator's conf.d (an S3 repository, say) wins over ours
        theirs = self._operator_options()
        lines = [line for line in lines if line.split("=", 1)[0] not in theirs]
        self.config_file.write_text("\n".join(lines) + "\n")
        self.config_file.chmod(0o600)
        localdb.give_to_service_user(self.config_file)

    def _operator_options(self) -> set[str]:
        names = set()
        for path in sorted((self.place / "conf.d").glob("*.conf")):
            for line in path.read_text().splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    names.add(line.split("=", 1)[0].strip())
        return names

    def _options(self) -> list[str]:
        return [f"--config={self.config_file}", f"--config-include-path={self.place / 'conf.d'}",
                f"--stanza={STANZA}"]

    def server_settings(self) -> dict[str, str]:
        """PostgreSQL settings for archiving into the repository ({} until `pitr enable`)."""
        if not self.enabled():
            return {}
        self.write_config()
        command = shlex.join([pgbackrest_bin(), *self._options(), "archive-push"]) + " %p"
        return {
            "archive_mode": "on",
            "archive_command": "'" + command.replace("'", "''") + "'",
            # an idle server still closes a WAL segment a minute: that bounds what a lost disk can take
            "archive_timeout": "60",
            "wal_level": "replica",
        }

    # -- commands --------------------------------------------------------------------------------

    def run(self, *args: str, what: str | None = None) -> str:
        if not self.enabled():
            raise BackupError("point-in-time recovery is not set up: run `referral-service pitr enable` first")
        env = dict(os.environ, PGPASSWORD=self.cluster.password)  # libpq reads it; never on a command line
        done = localdb.run_as_service_user([pgbackrest_bin(), *self._options(), *args], env=env)
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise BackupError(f"pgbackrest {what or args[-1]} failed: {' | '.join(message[-3:])}")
        return done.stdout

    def create_stanza(self) -> None:
        self.run("stanza-create", what="stanza-create")
        self.run("check", what="check (is WAL archiving working?)")

    def backup(self, kind: str) -> BackupSet:
        if kind not in KINDS:
            raise BackupError(f"unknown backup type {kind!r}: choose one of {', '.join(KINDS)}")
        self.run(f"--type={kind}", "backup")
        backups = self.info().backups
        if not backups:
            raise BackupError("pgbackrest reported success but lists no backup")
        return backups[-1]

    def info(self) -> Info:
        data = json.loads(self.run("--output=json", "info") or "[]")
        stanza = next((s for s in data if s.get("name") == STANZA), None) or {}
        archive = (stanza.get("archive") or [{}])[-1]
        backups = [BackupSet(label=b["label"], kind=b["type"],
                             started_at=datetime.fromtimestamp(b["timestamp"]["start"], UTC),
                             stopped_at=datetime.fromtimestamp(b["timestamp"]["stop"], UTC),
                             size_bytes=int(b["info"]["repository"].get("delta", 0)))
                   for b in stanza.get("backup", [])]
        return Info(backups=backups, wal_min=archive.get("min"), wal_max=archive.get("max"),
                    status=(stanza.get("status") or {}).get("message", "unknown"))

    def restore_to(self, when: datetime, say: Say) -> Path:
        """Replace the cluster's data with its state at `when`; returns where the previous data was kept."""
        info = self.info()
        if not info.backups:
            raise BackupError("no pgBackRest backup yet: take one with `referral-service backup --full`")
        earliest = info.backups[0].stopped_at
        if when < earliest:
            raise BackupError(f"{when.isoformat()} is before the oldest backup ended ({earliest.isoformat()}): "
                              f"that is the earliest time this repository can restore to")
        if when > datetime.now(UTC):
            raise BackupError(f"{when.isoformat()} is in the future")
        cluster = self.cluster
        if cluster.running():
            try:  # switch to a new WAL segment and wait until it is archived, so the latest commits count
                self.run("check", what="check")
            except BackupError as exc:
                say(f"warning: could not archive the current WAL before stopping ({exc}); continuing")
            cluster.stop()
        kept = cluster.pgdata.with_name(f"data.before-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
        os.replace(cluster.pgdata, kept)
        _empty_service_folder(cluster.pgdata)
        try:
            say(f"restoring the newest backup before {when.isoformat()} and replaying WAL up to it")
            self.run("--type=time", f"--target={_target(when)}", "--target-action=promote", "restore")
            cluster.start()
            _wait_promoted(cluster)
        except OperatorError as exc:
            cluster.stop()
            failed = cluster.pgdata.with_name(kept.name.replace("before-restore", "failed-restore"))
            os.replace(cluster.pgdata, failed)
            os.replace(kept, cluster.pgdata)
            cluster.start()
            raise BackupError(f"restore to {when.isoformat()} failed, the previous data is back in place "
                              f"(the attempt is in {failed}): {exc}") from None
        return kept


def _target(when: datetime) -> str:
    """pgBackRest's time format (and PostgreSQL's recovery_target_time), always in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def parse_time(text: str) -> datetime:
    """An ISO time with its zone ("2026-12-01 10:00:00+00"); a time without a zone is refused, not guessed."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackupError(f"--to {text!r} is not a time: write it as \"2026-12-01 10:00:00+00\"") from None
    if when.tzinfo is None:
        raise BackupError(f"--to {text!r} has no time zone: add one, e.g. \"{text.strip()}+00\" for UTC")
    return when


def _empty_service_folder(path: Path) -> None:
    path.mkdir(mode=0o700)
    localdb.give_to_service_user(path)


def _wait_promoted(cluster: localdb.Cluster) -> None:
    import psycopg

    deadline = time.monotonic() + PROMOTE_TIMEOUT
    while True:
        try:
            with psycopg.connect(cluster.url("postgres"), connect_timeout=5) as conn:
                if not conn.execute("select pg_is_in_recovery()").fetchone()[0]:
                    return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise BackupError(f"the restored server is still recovering after {PROMOTE_TIMEOUT:.0f} s")
        time.sleep(0.3)


def for_local_cluster() -> Pitr:
    if os.environ.get("DATABASE_URL"):
        raise BackupError("pgBackRest commands drive the local cluster; with DATABASE_URL set, run pgbackrest on "
                          "the database host (docs/deployment.md, point-in-time recovery)")
    return Pitr(localdb.Cluster())


def server_settings(cluster: localdb.Cluster) -> dict[str, str]:
    """The hook localdb calls while writing the cluster's settings."""
    return Pitr(cluster).server_settings()
