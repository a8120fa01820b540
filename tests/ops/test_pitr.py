"""Point-in-time recovery with pgBackRest, as an operator runs it: write A, note the time, write B, restore to
that time: A is there, B is not. On a cluster of its own (the restore replaces its whole data folder)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.ops.test_restore import LocalStack, one_error_line, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    made = start_stack(tmp_path_factory.mktemp("pitr-stack") / "data")
    try:
        yield made
    finally:
        made.destroy()


def _rows(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("select v from pitr_probe order by v")]


def _metrics(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return conn.execute("select internal.ops_metrics()").fetchone()[0]


def test_restore_to_a_moment_between_two_writes(stack):
    started = time.monotonic()
    before = _metrics(stack.url())
    assert before["referral_wal_archiving"] == 0 and before["referral_backup_last_pitr_timestamp_seconds"] == 0

    enabled = stack.ok("pitr", "enable")  # archiving on, stanza, first full backup
    assert "full backup" in enabled
    url = stack.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table pitr_probe (v text primary key)")
        conn.execute("insert into pitr_probe values ('A')")
    assert "incr backup" in stack.ok("backup", "--incr")  # the restore below starts from this one
    with psycopg.connect(url, autocommit=True) as conn:
        moment = conn.execute("select clock_timestamp()").fetchone()[0]
        time.sleep(0.2)
        conn.execute("insert into pitr_probe values ('B')")
    assert _rows(url) == ["A", "B"]

    metrics = _metrics(url)
    assert metrics["referral_wal_archiving"] == 1
    assert metrics["referral_backup_last_pitr_timestamp_seconds"] > time.time() - 120
    assert metrics["referral_wal_last_archived_timestamp_seconds"] > time.time() - 120
    status = stack.ok("pitr", "status")
    assert "full" in status and "incr" in status

    printed = stack.ok("restore", "--to", moment.isoformat(), "--yes")
    assert "previous data folder is kept" in printed
    assert _rows(url) == ["A"]  # A is there, B is not
    with psycopg.connect(url, autocommit=True) as conn:  # and the restored server takes writes again
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (False,)
        conn.execute("insert into pitr_probe values ('C')")
    print(f"\nPITR round trip (enable, full + incr backup, restore): {time.monotonic() - started:.1f} s")


def test_restore_to_refuses_times_it_cannot_reach(stack):
    now = datetime.now(UTC)
    cases = {
        "2001-01-01 00:00:00+00": "before the oldest backup",
        (now + timedelta(hours=1)).isoformat(): "in the future",
        "2026-12-01 10:00:00": "no time zone",
        "yesterday-ish": "not a time",
    }
    for when, reason in cases.items():
        done = stack.cli("restore", "--to", when, "--yes")
        assert done.returncode == 1, done.stderr
        assert reason in one_error_line(done)
    done = stack.cli("restore", "some.dump", "--to", "2026-12-01 10:00:00+00")
    assert done.returncode == 2 and "--to" in done.stderr
