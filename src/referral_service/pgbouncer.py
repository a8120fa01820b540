"""A local PgBouncer (transaction pooling) in front of the project's PostgreSQL.

Like PostgreSQL, PgBouncer refuses to run as root, so under root it runs as the service user; its
config and password file live in a folder only that user can read, and are 0600 from their creation.

The password file holds the clear password, not a SCRAM verifier: PgBouncer must itself log in to
PostgreSQL with SCRAM, which needs the password (a verifier would only do if it were byte-for-byte the
server's, salt included). It is no more exposed than `.data/secrets.json` (0600), where it comes from.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from . import config, localdb
from .errors import OperatorError

DEFAULT_PORT = 6432


@dataclass(frozen=True)
class Bouncer:
    db_port: int = config.DB_PORT
    port: int = DEFAULT_PORT
    home: Path = config.DATA_DIR / "pgbouncer"
    pool_size: int = 20

    def url(self, user: str, password: str, dbname: str = config.DB_NAME) -> str:
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{self.port}/{dbname}"

    @property
    def pidfile(self) -> Path:
        return self.home.resolve() / "pgbouncer.pid"

    def _write_config(self, users: dict[str, str]) -> Path:
        place = localdb.service_folder(self.home)
        userlist = place / "userlist.txt"
        # userlist.txt quoting: a double quote inside a value is written twice
        _write_private(userlist, "".join(f'"{name}" "{pw.replace(chr(34), chr(34) * 2)}"\n'
                                         for name, pw in users.items()))
        ini = place / "pgbouncer.ini"
        _write_private(ini, f"""\
[databases]
; any database name is passed on to the same-named database of the local server
* = host=127.0.0.1 port={self.db_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {userlist}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits
pidfile = {self.pidfile}
logfile = {place / 'pgbouncer.log'}
""")
        for path in (userlist, ini):
            localdb.give_to_service_user(path)
        return ini

    def running(self) -> bool:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return False
        return Path(f"/proc/{pid}").exists()

    def start(self, users: dict[str, str]) -> None:
        """Start (or restart with the current users) a daemonised PgBouncer."""
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise OperatorError(f"pgbouncer not found; install it: {localdb.INSTALL_HINT}")
        self.stop()
        if localdb.port_in_use(self.port):
            raise OperatorError(f"port {self.port} is taken by another program; choose another with --pgbouncer-port")
        ini = self._write_config(users)
        done = localdb.run_as_service_user([binary, "-d", "-q", str(ini)])
        if done.returncode != 0:
            raise OperatorError(f"pgbouncer did not start: {done.stderr.strip() or done.stdout.strip()}")
        deadline = time.monotonic() + 10
        while not localdb.port_in_use(self.port):
            if time.monotonic() > deadline:
                raise OperatorError("pgbouncer did not open its port within 10 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if not self.running():
            return
        pid = int(self.pidfile.read_text())
        localdb.run_as_service_user(["kill", f"-{signal.SIGINT.value}", str(pid)])
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, 0600 from the file's creation (never a moment readable by others)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
