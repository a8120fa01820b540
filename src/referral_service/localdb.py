"""The project's own PostgreSQL 15 cluster: initdb, start, stop, status.

PostgreSQL refuses to run as root, so under root every server binary runs as the unprivileged
`postgres` OS user. If that user cannot enter the project folder (a CI clone under a private
temporary folder, say), the cluster's files live under /var/lib/referral-service/<hash> instead
and `.data/<name>` points there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from . import config
from .errors import OperatorError

PG_MAJOR = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
SERVICE_USER = "postgres"
INSTALL_HINT = "sudo apt-get install -y postgresql-15 postgresql-15-cron pgbouncer"


def pg_bin(name: str) -> str:
    path = PG_BIN / name
    if not path.exists():
        raise OperatorError(f"PostgreSQL {PG_MAJOR} binaries not found in {PG_BIN}; install them: {INSTALL_HINT}")
    return str(path)


def _as_root() -> bool:
    return os.geteuid() == 0


def run_as_service_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if _as_root():
        cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _reachable_by_service_user(folder: Path) -> bool:
    if not _as_root():
        return True
    probe = subprocess.run(["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(folder)], capture_output=True)
    return probe.returncode == 0


ORPHAN_WAIT = 30.0  # seconds `start` waits for server processes a crashed postmaster left behind


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Cluster:
    """One local cluster: its folder under the data dir, its TCP port and its superuser password.

    The port is stored with the cluster (`cluster.json` beside its data) when it is created or started, and
    every later command reads it from there: a new shell without REFERRAL_DB_PORT still finds the cluster.
    An explicit `port` (tests, `db start --port`) is used as given and stored at the next start."""

    name: str = "pg"
    port: int | None = None
    data_dir: Path = field(default_factory=lambda: config.DATA_DIR)

    def __post_init__(self) -> None:
        if self.port is not None:
            return
        stored, asked = self.stored_port(), config.requested_db_port()
        if stored and asked and stored != asked:
            raise OperatorError(
                f"the cluster in {self.home} uses port {stored} (stored with it), but REFERRAL_DB_PORT={asked}: "
                f"unset REFERRAL_DB_PORT, or move the cluster with `referral-service db start --port {asked}`")
        object.__setattr__(self, "port", stored or asked or config.DEFAULT_DB_PORT)

    def stored_port(self) -> int | None:
        try:
            return int(json.loads((self.home / "cluster.json").read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store_port(self) -> None:
        (self.home / "cluster.json").write_text(json.dumps({"port": self.port}) + "\n")

    @property
    def home(self) -> Path:
        """Folder holding `data/` (PGDATA), `run/` (socket) and `server.log`."""
        return self.data_dir / self.name

    @property
    def place(self) -> Path:
        """The real folder behind `home`: what the server processes, running as the service user, see."""
        return self.home.resolve()

    @property
    def pgdata(self) -> Path:
        return self.place / "data"

    @property
    def password(self) -> str:
        return config.load_secrets(self.data_dir).superuser_password

    def url(self, dbname: str = config.DB_NAME, user: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{user}:{quote(pw, safe='')}@127.0.0.1:{self.port}/{dbname}"

    # -- lifecycle -----------------------------------------------------------------------------

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> bool:
        """initdb once; returns True when a new cluster was made."""
        if self.initialised():
            version = (self.pgdata / "PG_VERSION").read_text().strip()
            if version != PG_MAJOR:
                raise OperatorError(
                    f"{self.pgdata} holds a PostgreSQL {version} cluster; this project needs {PG_MAJOR}: "
                    f"move it away (or pg_upgrade it) and run again"
                )
            return False
        service_folder(self.home)
        pwfile = self.place / ".pwfile"
        pwfile.unlink(missing_ok=True)
        # 0600 from its creation: initdb reads the superuser's password from it (and sets it in bootstrap
        # mode, which no statistics or log records); a password never goes through ALTER ROLE in clear here
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        give_to_service_user(pwfile)
        try:
            done = run_as_service_user([
                pg_bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
            ])
        finally:
            pwfile.unlink()
        if done.returncode != 0:
            raise OperatorError(f"initdb failed: {done.stderr.strip().splitlines()[-1]}")
        (self.place / "run").mkdir(exist_ok=True)
        give_to_service_user(self.place / "run")
        self._store_port()
        return True

    def _write_settings(self) -> None:
        """The project's settings, rewritten at every start into referral.conf (included by postgresql.conf)."""
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.place / 'run'}'",
            "shared_preload_libraries": "'pg_cron,pg_stat_statements'",
            "cron.database_name": f"'{config.DB_NAME}'",
            # jobs run in background workers: no libpq login, so scram-only pg_hba needs no password for them
            "cron.use_background_workers": "on",
            "max_worker_processes": "32",
            "pg_stat_statements.track": "'all'",
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "log_min_duration_statement": "1000",
        }
        from .backup.pgbackrest import server_settings  # WAL archiving, once `pitr enable` has run

        settings.update(server_settings(self))
        (self.pgdata / "referral.conf").write_text(
            "# written by referral-service at every start; edit localdb.py instead\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items()))
        give_to_service_user(self.pgdata / "referral.conf")
        conf = self.pgdata / "postgresql.conf"
        if "include_if_exists = 'referral.conf'" not in conf.read_text():
            with conf.open("a") as f:
                f.write("\ninclude_if_exists = 'referral.conf'\n")

    def running(self) -> bool:
        if not self.initialised():
            return False
        if run_as_service_user([pg_bin("pg_ctl"), "status", "-D", str(self.pgdata)]).returncode != 0:
            return False
        return not self._postmaster_is_zombie()

    def _postmaster_is_zombie(self) -> bool:
        """A killed postmaster whose parent has not reaped it yet: pg_ctl still sees its PID, but it is dead."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return False
        return state in ("Z", "X")

    def start(self, log: Callable[[str], None] = _stderr) -> None:
        self.init()
        if self.running():
            stored = self.stored_port()
            if stored and stored != self.port:
                raise OperatorError(f"the cluster runs on port {stored}; stop it first to move it to {self.port}")
            self._ensure_database()
            return
        self._write_settings()
        if port_in_use(self.port):
            raise OperatorError(
                f"port {self.port} on 127.0.0.1 is taken by another program; "
                f"stop it or start the cluster elsewhere with `referral-service db start --port N`"
            )
        self._store_port()
        deadline = time.monotonic() + ORPHAN_WAIT
        self._wait_for_orphans(deadline, log)
        while True:
            done = run_as_service_user([
                pg_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.pgdata),
                "-l", str(self.place / "server.log"), "-o", f"-p {self.port}",
            ])
            if done.returncode == 0:
                break
            tail = (self.place / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
            # a backend of a crashed postmaster may still attach the old shared memory: wait, then again
            if any("shared memory block" in line for line in tail) and time.monotonic() < deadline:
                self._wait_for_orphans(deadline, log, at_least=0.5)
                continue
            raise OperatorError(f"PostgreSQL did not start: {' | '.join(tail)}")
        self._ensure_database()

    def orphans(self) -> list[int]:
        """Server processes still working in this cluster's data folder while no postmaster runs (after a
        crash or `kill -9` of the postmaster, backends finish what they were doing before they notice)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if Path(os.readlink(entry / "cwd")) == self.pgdata:
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def _wait_for_orphans(self, deadline: float, log: Callable[[str], None], at_least: float = 0.0) -> None:
        pids = self.orphans()
        if not pids and not at_least:
            return
        if pids:
            log(f"waiting up to {max(0, deadline - time.monotonic()):.0f} s for {len(pids)} server process(es) "
                f"left by a crashed postmaster to exit (pids {', '.join(map(str, pids[:8]))})")
        time.sleep(at_least)
        while (pids := self.orphans()) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pids:
            raise OperatorError(
                f"server processes of a crashed postmaster still run after {ORPHAN_WAIT:.0f} s "
                f"(pids {', '.join(map(str, pids))}); end them (kill {' '.join(map(str, pids))}) and start again")

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", [config.DB_NAME]).fetchone()
            if not exists:
                conn.execute(f'create database "{config.DB_NAME}"')

    def stop(self) -> None:
        if self.running():
            run_as_service_user([pg_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.pgdata)])

    def destroy(self) -> None:
        """Stop and remove the cluster's files (used for throwaway test clusters)."""
        self.stop()
        if self.home.is_symlink():
            shutil.rmtree(self.home.resolve(), ignore_errors=True)
            self.home.unlink()
        elif self.home.exists():
            shutil.rmtree(self.home, ignore_errors=True)


def service_folder(home: Path) -> Path:
    """Create `home` for files the service user must own; returns the real folder behind it.

    When the service user cannot traverse the project folder, the real folder is under
    /var/lib/referral-service and `home` becomes a symlink to it.
    """
    if home.exists() or home.is_symlink():
        return home.resolve()
    home.parent.mkdir(parents=True, exist_ok=True)
    if _reachable_by_service_user(home.parent):
        home.mkdir()
        target = home
    else:
        digest = hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:12]
        target = Path("/var/lib/referral-service") / f"{digest}-{home.name}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        home.symlink_to(target)
    if _as_root():
        shutil.chown(target, SERVICE_USER, SERVICE_USER)
    target.chmod(0o700)
    return target.resolve()


def give_to_service_user(path: Path) -> None:
    if _as_root():
        shutil.chown(path, SERVICE_USER, SERVICE_USER)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_accepting(url: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def admin_url() -> str:
    """Superuser URL of the app database: DATABASE_URL when set (another server), else the local cluster."""
    return os.environ.get("DATABASE_URL") or Cluster().url()
