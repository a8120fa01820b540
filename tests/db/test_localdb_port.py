"""The local cluster remembers its port, starts right after a crash, and `db psql` keeps the password off the
command line (issue 12 items 4, 5, 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from referral_service import config, localdb


def cli(data_dir, *args, env=None, timeout=120):
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REFERRAL_DB_PORT")}
    full.update(REFERRAL_DATA_DIR=str(data_dir), **(env or {}))
    return subprocess.run([sys.executable, "-m", "referral_service", *args], capture_output=True, text=True,
                          env=full, timeout=timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The CLI's default cluster in a data folder of its own, created with REFERRAL_DB_PORT set once."""
    data = tmp_path_factory.mktemp("portcluster")
    data.chmod(0o755)
    port = localdb.free_port()
    started = cli(data, "db", "start", env={"REFERRAL_DB_PORT": str(port)})
    assert started.returncode == 0, started.stderr
    cluster = localdb.Cluster(name="pg", port=port, data_dir=data)
    yield data, port, cluster
    cluster.destroy()


def test_later_commands_read_the_stored_port(stack):
    data, port, _ = stack
    shown = cli(data, "db", "status")  # a new shell: no REFERRAL_DB_PORT
    assert shown.returncode == 0 and f"127.0.0.1:{port}" in shown.stdout
    assert f"@127.0.0.1:{port}/" in cli(data, "db", "url").stdout
    other = cli(data, "db", "status", env={"REFERRAL_DB_PORT": str(port + 1)})
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert f"uses port {port} (stored with it)" in other.stderr


def test_psql_passes_its_arguments_and_no_password_on_the_command_line(stack):
    data, _, cluster = stack
    done = cli(data, "db", "psql", "-d", "postgres", "-tAc", "select current_database()")
    assert done.returncode == 0 and done.stdout.strip() == "postgres", done.stderr
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REFERRAL_DB_PORT")}
    proc = subprocess.Popen([sys.executable, "-m", "referral_service", "db", "psql", "-c", "select pg_sleep(3)"],
                            env={**full, "REFERRAL_DATA_DIR": str(data)}, stdout=subprocess.DEVNULL)
    try:
        seen = ""
        for _ in range(50):
            time.sleep(0.1)
            seen = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
            if "psql" in seen.split("\0")[0]:
                break
        assert "psql" in seen.split("\0")[0], seen
        assert cluster.password not in seen and "postgresql://" not in seen
    finally:
        proc.wait(20)


def test_start_right_after_the_postmaster_was_killed(stack):
    data, _, cluster = stack
    busy = threading.Thread(target=_busy_backend, args=(cluster,), daemon=True)
    busy.start()
    time.sleep(1.0)  # the query runs; it does not look at the postmaster while it computes
    postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    time.sleep(0.3)
    assert cluster.orphans(), "the busy backend should outlive its postmaster for a few seconds"
    started = cli(data, "db", "start")
    assert started.returncode == 0, started.stderr
    assert "left by a crashed postmaster" in started.stdout + started.stderr
    with psycopg.connect(cluster.url(config.DB_NAME)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def _busy_backend(cluster: localdb.Cluster) -> None:
    try:
        with psycopg.connect(cluster.url(config.DB_NAME)) as conn:
            conn.execute("select count(*) from generate_series(1, 80000000)")
    except psycopg.Error:
        pass  # the server went away under it, as intended
