"""The migration runner: order, once, checksums, rollback of a failing file, one runner at a time."""

import threading

import psycopg
import pytest

from referral_service.migrate import MigrationError, migrate
from tests.support import with_database


@pytest.fixture
def scratch(superuser_dsn, tmp_path):
    name = "migrate_scratch"
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    (tmp_path / "migs").mkdir()
    yield with_database(superuser_dsn, name), tmp_path / "migs"
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


def write(folder, name, sql):
    (folder / name).write_text(sql)


def tables(url):
    with psycopg.connect(url) as conn:
        return sorted(r[0] for r in conn.execute(
            "select tablename from pg_tables where schemaname = 'public'"))


def test_applies_in_order_once(scratch):
    url, folder = scratch
    write(folder, "002_b.sql", "create table b (id int references a);")
    write(folder, "001_a.sql", "create table a (id int primary key);")
    assert migrate(url, folder, log=lambda _: None) == ["001_a.sql", "002_b.sql"]
    assert migrate(url, folder, log=lambda _: None) == []
    assert tables(url) == ["a", "b"]


def test_refuses_an_edited_applied_file(scratch):
    url, folder = scratch
    write(folder, "001_a.sql", "create table a (id int);")
    migrate(url, folder, log=lambda _: None)
    write(folder, "001_a.sql", "create table a (id bigint);")
    with pytest.raises(MigrationError, match="001_a.sql was changed after it was applied"):
        migrate(url, folder, log=lambda _: None)


def test_failing_migration_leaves_database_as_before(scratch):
    url, folder = scratch
    write(folder, "001_a.sql", "create table a (id int);")
    migrate(url, folder, log=lambda _: None)
    write(folder, "002_bad.sql", "create table half (id int);\ninsert into a values (1);\nselect 1/0;")
    with pytest.raises(MigrationError, match="002_bad.sql failed and was rolled back: division by zero"):
        migrate(url, folder, log=lambda _: None)
    assert tables(url) == ["a"]
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from a").fetchone()[0] == 0
        assert conn.execute("select count(*) from schema_migrations.applied").fetchone()[0] == 1


def test_bad_file_names_are_refused(scratch):
    url, folder = scratch
    write(folder, "1_a.sql", "select 1;")
    with pytest.raises(MigrationError, match="NNN_lower_snake.sql"):
        migrate(url, folder, log=lambda _: None)


def test_concurrent_runners_apply_once(scratch):
    url, folder = scratch
    # slow enough that both runners overlap; a second application would fail on "already exists"
    write(folder, "001_slow.sql", "select pg_sleep(1); create table once (id int);")
    results, errors = [], []

    def run():
        try:
            results.append(migrate(url, folder, log=lambda _: None))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [[], ["001_slow.sql"]]
