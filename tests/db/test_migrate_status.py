"""`migrate status`, `migrate new`, a newer database than the code, and no migrations at all (issue 12 item 3)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from referral_service import migrate as runner
from referral_service.migrate import MigrationError, migrate
from tests.support import with_database

NAME = "migrate_status_scratch"


@pytest.fixture
def scratch(superuser_dsn, tmp_path):
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {NAME} with (force)")
        conn.execute(f"create database {NAME}")
    folder = tmp_path / "migs"
    folder.mkdir()
    yield with_database(superuser_dsn, NAME), folder
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {NAME} with (force)")


def cli(*args, url, folder):
    env = {**os.environ, "DATABASE_URL": url, "REFERRAL_MIGRATIONS_DIR": str(folder)}
    return subprocess.run([sys.executable, "-m", "referral_service", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_status_lists_applied_pending_changed_and_unknown(scratch):
    url, folder = scratch
    for name in ("001_a.sql", "002_b.sql", "003_c.sql"):
        (folder / name).write_text(f"create table {name[4]} ();")
    migrate(url, folder, log=lambda _: None)
    (folder / "002_b.sql").write_text("create table b (id int);")  # edited after it was applied
    (folder / "003_c.sql").unlink()  # applied from code this checkout does not have
    (folder / "004_d.sql").write_text("create table d ();")
    state = runner.status(url, folder)
    assert (state.applied, state.changed, state.unknown, state.pending) == \
        (["001_a.sql"], ["002_b.sql"], ["003_c.sql"], ["004_d.sql"])
    shown = cli("migrate", "status", url=url, folder=folder)
    assert shown.returncode == 1
    assert shown.stdout.splitlines()[:4] == ["applied  001_a.sql", "pending  004_d.sql",
                                             "changed  002_b.sql", "unknown  003_c.sql"]


def test_a_newer_database_is_refused_unless_forced(scratch):
    url, folder = scratch
    (folder / "001_a.sql").write_text("create table a ();")
    (folder / "002_b.sql").write_text("create table b ();")
    migrate(url, folder, log=lambda _: None)
    (folder / "002_b.sql").unlink()
    (folder / "003_c.sql").write_text("create table c ();")
    with pytest.raises(MigrationError, match=r"1 migration\(s\) this code does not know \(002_b.sql\).*--force"):
        migrate(url, folder, log=lambda _: None)
    refused = cli("migrate", url=url, folder=folder)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "newer than the code" in refused.stderr
    assert migrate(url, folder, log=lambda _: None, force=True) == ["003_c.sql"]


def test_no_migration_files_is_an_error_not_success(scratch, tmp_path):
    url, folder = scratch
    done = cli("migrate", url=url, folder=folder)
    assert done.returncode == 1 and "no migration files" in done.stderr and "up to date" not in done.stdout
    missing = cli("migrate", url=url, folder=tmp_path / "nowhere")
    assert missing.returncode == 1 and "no migrations folder" in missing.stderr


def test_new_creates_the_next_numbered_file(tmp_path):
    (tmp_path / "001_a.sql").write_text("")
    (tmp_path / "007_g.sql").write_text("")
    made = runner.new("add_widgets", tmp_path)
    assert made.name == "008_add_widgets.sql" and made.read_text().startswith("-- 008_add_widgets")
    with pytest.raises(MigrationError, match="lower_snake_case"):
        runner.new("Bad Name", tmp_path)
    done = subprocess.run([sys.executable, "-m", "referral_service", "migrate", "new", "more"], capture_output=True,
                          text=True, env={**os.environ, "REFERRAL_MIGRATIONS_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 0 and (tmp_path / "009_more.sql").exists()
