"""Backups against a real server: pg_dump, pg_restore and the verification that compares them."""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from referral_service import backup as bk

SCHEMA = """
create extension if not exists pgcrypto;
create schema app;
create schema internal;
create table app.members (
    id uuid primary key default gen_random_uuid(),
    display_name text not null,
    profile jsonb,
    joined_at timestamptz not null,
    score double precision,
    balance numeric,
    avatar bytea,
    tags text[]
);
create table app.referrals (
    id bigint generated always as identity primary key,
    referrer uuid not null references app.members,
    code text unique,
    redeemed_at timestamptz
);
alter table app.referrals enable row level security;
create policy referrals_own on app.referrals using (code is not null);
grant select on app.referrals to public;
comment on table app.referrals is 'one row per referral code';
create table internal.events (id bigint, kind text, at timestamptz) partition by range (at);
create table internal.events_2024 partition of internal.events
    for values from ('2024-01-01') to ('2025-01-01');
create table internal.events_2025 partition of internal.events
    for values from ('2025-01-01') to ('2026-01-01');
create materialized view internal.event_counts as select kind, count(*) from internal.events group by kind;
"""

DATA = """
insert into app.members (id, display_name, profile, joined_at, score, balance, avatar, tags) values
  ('00000000-0000-4000-8000-000000000001', 'Zoë Ångström 😀', '{"lang": "sv", "n": [1, 2.5, null]}',
   '2024-02-29 23:59:59.123456+05:30', 0.1, 12345678901234567890.123, '\\x00ff10', '{a,"b c",NULL}'),
  ('00000000-0000-4000-8000-000000000002', '李小龍', null, 'infinity', null, 'NaN', null, null),
  ('00000000-0000-4000-8000-000000000003', e'tab\\there\\nnewline "quoted" \\\\', '{}', '1999-12-31 00:00:00+00',
   -0.0, 0, '\\x', '{}');
insert into app.referrals (referrer, code, redeemed_at)
  select '00000000-0000-4000-8000-000000000001', 'CODE-' || g, case when g % 2 = 0 then now() end
  from generate_series(1, 50) g;
insert into app.referrals (referrer, code) values ('00000000-0000-4000-8000-000000000002', null);
insert into internal.events select g, 'kind-' || g % 3, '2024-06-01'::timestamptz + g * interval '2 days'
  from generate_series(1, 200) g;
refresh materialized view internal.event_counts;
"""


def _admin(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def _create_db(superuser_dsn: str, name: str) -> str:
    with _admin(superuser_dsn) as conn:
        conn.execute(sql.SQL("create database {} template template0").format(sql.Identifier(name)))
    return make_conninfo(superuser_dsn, dbname=name)


def _drop_db(superuser_dsn: str, name: str) -> None:
    with _admin(superuser_dsn) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def names(superuser_dsn: str) -> Iterator[list[str]]:
    """Database names the test may create; all are dropped afterwards, whatever happened."""
    created: list[str] = []
    yield created
    for name in created:
        _drop_db(superuser_dsn, name)


@pytest.fixture
def source(superuser_dsn: str, names: list[str]) -> str:
    name = f"rs_backup_src_{uuid.uuid4().hex[:8]}"
    names.append(name)
    dsn = _create_db(superuser_dsn, name)
    with _admin(dsn) as conn:
        conn.execute(SCHEMA)
        conn.execute(DATA)
    return dsn


def _new_name(names: list[str], kind: str) -> str:
    name = f"rs_backup_{kind}_{uuid.uuid4().hex[:8]}"
    names.append(name)
    return name


def _states(dsn: str) -> dict[str, bk.TableState]:
    with bk.common.connect(dsn) as conn:
        return bk.table_states(conn)


def _databases(superuser_dsn: str) -> set[str]:
    with _admin(superuser_dsn) as conn:
        return {row[0] for row in conn.execute("select datname from pg_database")}


def test_round_trip_loses_and_changes_nothing(source, superuser_dsn, names, tmp_path):
    calls = []
    dump = bk.backup(source, tmp_path, progress=lambda done, total, table: calls.append((done, total, table)))

    assert re.fullmatch(r"referral_service-\d{8}T\d{6}Z\.dump", dump.name)
    assert dump.read_bytes()[:5] == b"PGDMP"  # custom format
    assert calls[-1][0] == calls[-1][1] >= 4  # progress reached its total
    assert {c[2] for c in calls} >= {"app.members", "app.referrals", "internal.events_2024"}

    target = make_conninfo(superuser_dsn, dbname=_new_name(names, "dst"))
    result = bk.restore(dump, target)
    assert result.skipped == []  # no pg_cron in this database: nothing to leave out

    before, after = _states(source), _states(target)
    assert set(before) == {"app.members", "app.referrals", "internal.events_2024", "internal.events_2025"}
    assert all(state.rows > 0 for state in before.values()), "every table must hold data for this test to mean much"
    assert after == before

    with _admin(target) as conn:
        conn.execute("set timezone = 'UTC'")
        row = conn.execute("select display_name, profile, joined_at::text, avatar, tags from app.members "
                           "where id = '00000000-0000-4000-8000-000000000001'").fetchone()
        assert row == ("Zoë Ångström 😀", {"lang": "sv", "n": [1, 2.5, None]}, "2024-02-29 18:29:59.123456+00",
                       b"\x00\xff\x10", ["a", "b c", None])
        assert conn.execute("select profile, score from app.members where display_name = '李小龍'").fetchone() \
            == (None, None)
        # Row security, policies, grants and comments survive: ownership and ACLs are restored as dumped.
        assert conn.execute("select relrowsecurity from pg_class where oid = 'app.referrals'::regclass").fetchone()[0]
        assert conn.execute("select count(*) from pg_policies where policyname = 'referrals_own'").fetchone()[0] == 1
        assert conn.execute("select has_table_privilege('public', 'app.referrals', 'select')").fetchone()[0] is not None
        assert conn.execute("select obj_description('app.referrals'::regclass)").fetchone()[0] \
            == "one row per referral code"
        # The identity sequence continues where the source left off.
        assert conn.execute("insert into app.referrals (referrer) values "
                            "('00000000-0000-4000-8000-000000000003') returning id").fetchone()[0] == 52


def test_verify_passes_then_fails_loudly_on_a_change(source, superuser_dsn, tmp_path):
    dump = bk.backup(source, tmp_path, verify=True)
    assert bk.last_success(tmp_path)["file"] == dump.name
    assert bk.last_success(tmp_path)["verified"] is True
    assert "referral_backup_last_success_timestamp_seconds" in (tmp_path / bk.METRICS_FILE).read_text()

    report = bk.verify(dump, source)
    assert report.ok and report.compared_against == "manifest"
    assert report.tables["internal.events_2024"].rows > 0

    with _admin(source) as conn:  # same row count, one value changed
        conn.execute("update app.members set profile = '{\"lang\": \"en\"}' where display_name = '李小龍'")
    with pytest.raises(bk.VerifyError) as failure:
        bk.verify(dump, source, use_manifest=False)
    assert "app.members: same row count (3) but contents differ" in str(failure.value)
    assert failure.value.report.compared_against == "source"

    with _admin(source) as conn:
        conn.execute("delete from internal.events where id <= 10")
    with pytest.raises(bk.VerifyError, match=r"internal\.events_2024: 96 rows in the source, 106 restored"):
        bk.verify(dump, source, use_manifest=False)

    # The manifest was taken in the dump's own snapshot, so later writes to the source do not matter to it.
    assert bk.verify(dump, source).ok
    assert not any("_verify_" in name for name in _databases(superuser_dsn)), "scratch databases are dropped"


def test_verify_fails_on_a_damaged_dump(source, superuser_dsn, tmp_path):
    dump = bk.backup(source, tmp_path)
    data = bytearray(dump.read_bytes())
    dump.write_bytes(bytes(data[: len(data) // 2]))  # truncated, as by a full disk
    with pytest.raises(bk.BackupError, match="pg_restore"):
        bk.verify(dump, source)
    assert not any("_verify_" in name for name in _databases(superuser_dsn))


def test_restore_refuses_an_existing_database(source, tmp_path):
    dump = bk.backup(source, tmp_path)
    with pytest.raises(bk.BackupError, match="already exists"):
        bk.restore(dump, source)


def test_backup_failure_leaves_no_partial_file(superuser_dsn, tmp_path):
    missing = make_conninfo(superuser_dsn, dbname=f"rs_backup_missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(bk.BackupError):
        bk.backup(missing, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_retention_keeps_the_newest(source, tmp_path):
    made = [bk.backup(source, tmp_path, keep=2) for _ in range(3)]
    assert bk.dumps_in(tmp_path) == made[1:]
    assert sorted(p.name for p in tmp_path.glob("*.manifest.json")) == \
        sorted(p.name.replace(".dump", ".manifest.json") for p in made[1:])


def test_retention_ignores_other_files(tmp_path):
    names = [f"referral_service-2025010{d}T000000Z.dump" for d in range(1, 6)]
    for name in names + ["notes.txt", "referral_service-20240101T000000Z.dump.failed", "last_success.json"]:
        (tmp_path / name).write_text("x")
    removed = bk.apply_retention(tmp_path, 2)
    assert [p.name for p in removed] == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        names[3:] + ["notes.txt", "referral_service-20240101T000000Z.dump.failed", "last_success.json"])
    with pytest.raises(bk.BackupError):
        bk.apply_retention(tmp_path, 0)


# A listing as `pg_restore --list --verbose` prints it for a database with pg_cron and a view over cron.job.
CRON_LISTING = """\
; Selected TOC Entries:
;
3407; 1262 16384 DATABASE - referral_service postgres
8; 2615 16454 SCHEMA - api postgres
2; 3079 16385 EXTENSION - pg_cron 
3408; 0 0 COMMENT - EXTENSION pg_cron 
;	depends on: 2
3409; 0 0 ACL - SCHEMA cron postgres
;	depends on: 9
3; 3079 16423 EXTENSION - pg_stat_statements 
225; 1259 16462 VIEW api cron_jobs postgres
;	depends on: 2 2 8
3413; 0 0 ACL api cron_jobs postgres
;	depends on: 225
224; 1259 16455 TABLE api t postgres
;	depends on: 8
3401; 0 16455 TABLE DATA api t postgres
;	depends on: 224
3236; 0 16388 TABLE DATA cron job postgres
;	depends on: 219
3411; 0 0 SEQUENCE SET cron jobid_seq postgres
;	depends on: 218
"""


def test_cron_entries_and_their_dependents_are_left_out_of_other_databases():
    assert bk.cron.cron_entries(CRON_LISTING) == {2, 3408, 3409, 225, 3413, 3236, 3411}


def test_verify_the_migrated_database_with_pg_cron(superuser_dsn, request, tmp_path):
    """The real schema (pg_cron included) survives a scratch restore, which must leave pg_cron out."""
    with _admin(superuser_dsn) as conn:
        cron_available = conn.execute("select current_setting('cron.database_name', true) is not null").fetchone()[0]
    if not cron_available:
        pytest.skip("this server does not preload pg_cron, so the migrations cannot run on it")
    dsn = request.getfixturevalue("app_db_url")
    dump = bk.backup(dsn, tmp_path, verify=True)
    report = bk.verify(dump, dsn)
    assert report.ok
    assert "EXTENSION - pg_cron" in report.skipped
    assert "schema_migrations.applied" in report.tables
    assert not any(name.startswith("cron.") for name in report.tables)


def test_dump_paths_do_not_depend_on_the_clock_resolution(source, tmp_path):
    first = bk.backup(source, tmp_path)
    second = bk.backup(source, tmp_path)
    assert first != second and first.name < second.name
    assert isinstance(first, Path)
