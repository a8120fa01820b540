"""`referral-service restore` and `backup` as an operator runs them, against a local cluster of their own.

The module starts its own cluster (REFERRAL_DATA_DIR in a temporary folder, a free port) through the CLI, because
`restore --replace` swaps out the app database itself: the session's shared cluster must not lose it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from referral_service import backup as bk
from referral_service import localdb

# Variables that would point the CLI at another server or other secrets than the module's own cluster.
_FOREIGN = ("DATABASE_URL", "JWT_SECRET", "AUTHENTICATOR_PASSWORD", "REFERRAL_SUPERUSER_PASSWORD",
            "REFERRAL_BACKUP_DIR", "REFERRAL_PGBACKREST_REPO", "REFERRAL_DB_PORT")


@dataclass
class LocalStack:
    """A data folder with its own cluster, driven through the CLI the way an operator drives it."""

    data_dir: Path
    port: int

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN and not k.startswith("PGRST_")}
        return {**env, "REFERRAL_DATA_DIR": str(self.data_dir), "REFERRAL_DB_PORT": str(self.port),
                "COLUMNS": "200"}

    def cli(self, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "referral_service.cli", *args], input=stdin, text=True,
                              capture_output=True, env=self.env(), timeout=timeout)

    def ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def url(self, dbname: str = "referral_service") -> str:
        return make_conninfo(self.ok("db", "url").strip(), dbname=dbname)

    def databases(self) -> set[str]:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            return {row[0] for row in conn.execute("select datname from pg_database")}

    def destroy(self) -> None:
        localdb.Cluster(port=self.port, data_dir=self.data_dir).destroy()
        repo = self.data_dir / "pgbackrest"
        if repo.is_symlink():
            shutil.rmtree(repo.resolve(), ignore_errors=True)


def start_stack(folder: Path) -> LocalStack:
    stack = LocalStack(folder, localdb.free_port())
    stack.ok("setup")  # cluster, migrations, secrets, demo data
    return stack


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The operator sees one line saying what is wrong, never a traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or (done.returncode == 2 and "Usage:" in done.stderr), done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    made = start_stack(tmp_path_factory.mktemp("restore-stack") / "data")
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="module")
def dump(stack: LocalStack, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("restore-dumps")
    printed = stack.ok("backup", "--dir", str(out), "--verify")
    assert "verified" in printed
    return bk.dumps_in(out)[-1]


def _jobs(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return set(conn.execute("select jobname, database from cron.job").fetchall())


def test_restore_says_where_before_doing_anything(stack, dump):
    before = stack.databases()
    done = stack.cli("restore", str(dump))
    assert done.returncode == 2
    assert "--target" in done.stderr and "--replace" in done.stderr
    both = stack.cli("restore", str(dump), "--target", "x_copy", "--replace")
    assert both.returncode == 2 and "--target NEW_NAME" in both.stderr
    assert stack.databases() == before


@pytest.mark.parametrize("kind", ["text", "empty", "sql", "gzip", "folder", "missing", "bad-header"])
def test_a_file_that_is_not_a_dump_is_one_clear_line(stack, dump, tmp_path, kind):
    path = tmp_path / f"not-a-dump.{kind}"
    if kind == "text":
        path.write_text("hello, I am a text file\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "sql":
        path.write_text("--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n")
    elif kind == "gzip":
        path.write_bytes(gzip.compress(dump.read_bytes()))
    elif kind == "folder":
        path.mkdir()
    elif kind == "bad-header":
        path.write_bytes(b"PGDMP" + os.urandom(300))
    before = stack.databases()
    ways = [["--target", f"x_{uuid.uuid4().hex[:6]}"]] + ([["--replace", "--yes"]] if kind in ("text", "bad-header") else [])
    for where in ways:
        done = stack.cli("restore", str(path), *where)
        assert done.returncode == 1, done.stderr
        message = one_error_line(done)
        assert str(path) in message.replace("\n", "")
        assert any(word in message for word in ("not a dump", "damaged", "no such dump", "not a file")), message
    assert stack.databases() == before


def test_restore_under_another_name_keeps_data_secrets_and_cron_jobs(stack, dump):
    copy = f"referral_copy_{uuid.uuid4().hex[:6]}"
    live_jobs = _jobs(stack.url())
    printed = stack.ok("restore", str(dump), "--target", copy)
    assert f"restored into database {copy} (secrets installed" in printed
    with psycopg.connect(stack.url(copy)) as conn:
        assert conn.execute("select count(*) from api.offers").fetchone()[0] > 0
        assert conn.execute("select count(*) from internal.secrets where name = 'jwt_secret'").fetchone()[0] == 1
    # the copy's jobs run in the copy, named after it; the live database's jobs are untouched
    jobs = _jobs(stack.url())
    assert {(f"{name}@{copy}", copy) for name, db in live_jobs if db == "referral_service"} <= jobs
    assert live_jobs <= jobs
    assert "refresh-rollups@" + copy in printed


def test_replace_asks_first_and_keeps_the_old_database(stack, dump):
    url = stack.url()
    marker = f"after-dump-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into internal.backup_runs (file, ok) values (%s, true)", [marker])
    jobs_before = {job for job in _jobs(url)}

    refused = stack.cli("restore", str(dump), "--replace", stdin="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from internal.backup_runs where file = %s", [marker]).fetchone()[0] == 1

    started = time.monotonic()
    printed = stack.ok("restore", str(dump), "--replace", "--yes")
    print(f"\nrestore --replace of the demo database: {time.monotonic() - started:.1f} s")
    kept = next(name for name in stack.databases() if name.startswith("referral_service_before_restore_"))
    assert kept in printed
    with psycopg.connect(url) as conn:  # the live name now holds the dump: the later row is gone
        assert conn.execute("select count(*) from internal.backup_runs where file = %s", [marker]).fetchone()[0] == 0
        assert conn.execute("select count(*) from internal.secrets where name = 'jwt_secret'").fetchone()[0] == 1
    with psycopg.connect(stack.url(kept)) as conn:  # ... and the old database still has it
        assert conn.execute("select count(*) from internal.backup_runs where file = %s", [marker]).fetchone()[0] == 1
    # every job is back in the cron database, those of other databases (the copy) included
    assert {(name, db) for name, db in _jobs(url)} >= jobs_before
    # and pg_cron's scheduler works in the restored database again
    deadline = time.monotonic() + 20
    while True:
        with psycopg.connect(stack.url("postgres")) as conn:
            attached = conn.execute("select datname from pg_stat_activity where backend_type = 'pg_cron launcher'"
                                    ).fetchall()
        if attached == [("referral_service",)]:
            break
        assert time.monotonic() < deadline, f"pg_cron launcher not back: {attached}"
        time.sleep(0.5)


def test_restore_reports_progress_to_the_end(stack, dump):
    copy = f"referral_progress_{uuid.uuid4().hex[:6]}"
    calls: list[tuple[int, int, str]] = []
    bk.restore(dump, stack.url(copy), progress=lambda done, total, what: calls.append((done, total, what)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] > 100
    assert any("TABLE DATA" in what or "data for table" in what for _, _, what in calls)
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)


def test_keep_zero_is_a_usage_error_not_a_failed_backup(stack, tmp_path):
    def failures() -> int:
        with psycopg.connect(stack.url()) as conn:
            return conn.execute("select count(*) from internal.backup_runs where not ok").fetchone()[0]

    before = failures()
    for keep in ("0", "-3"):
        done = stack.cli("backup", "--dir", str(tmp_path), "--keep", keep)
        assert done.returncode == 2 and "--keep" in done.stderr and "Traceback" not in done.stderr
    assert failures() == before
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_backup_folder_is_one_line(stack, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for folder in (a_file / "backups", a_file, Path("/proc/self/backups")):
        done = stack.cli("backup", "--dir", str(folder))
        assert done.returncode == 1
        message = one_error_line(done)
        assert "backup folder" in message and str(folder) in message.replace("\n", "")
