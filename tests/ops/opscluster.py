"""One throwaway local cluster for the operator-CLI tests of issue 12, driven through the real CLI.

The CLI's own default cluster (`pg` in REFERRAL_DATA_DIR), in a private data folder on a free port: the
tests run the commands exactly as an operator does. Created once per test process, removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from referral_service import config, localdb


@dataclass(frozen=True)
class OpsStack:
    data_dir: Path
    port: int

    @property
    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("PGRST_", "REFERRAL_", "DATABASE_URL", "JWT_SECRET", "AUTHENTICATOR_"))}
        return {**clean, "REFERRAL_DATA_DIR": str(self.data_dir)}

    def cli(self, *args: str, env: dict[str, str] | None = None, stdin: str = "",
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "referral_service", *args], input=stdin, capture_output=True,
                              text=True, env={**self.env, **(env or {})}, timeout=timeout)

    @property
    def cluster(self) -> localdb.Cluster:
        return localdb.Cluster(name="pg", port=self.port, data_dir=self.data_dir)

    @property
    def url(self) -> str:
        return self.cluster.url(config.DB_NAME)

    def stored_secrets(self) -> dict[str, str]:
        return json.loads((self.data_dir / "secrets.json").read_text())


@functools.cache
def ops_stack() -> OpsStack:
    data = Path(tempfile.mkdtemp(prefix="referral-ops-"))
    data.chmod(0o755)  # the cluster's files are the service user's: it must traverse this folder
    stack = OpsStack(data / "data", localdb.free_port())
    atexit.register(stack.cluster.destroy)
    started = stack.cli("db", "start", env={"REFERRAL_DB_PORT": str(stack.port)})
    assert started.returncode == 0, started.stderr
    migrated = stack.cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return stack
