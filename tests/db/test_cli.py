"""The operator CLI against another server (DATABASE_URL): the same commands, one-line errors."""

import os
import stat
import subprocess
import sys

import psycopg
import pytest

from referral_service.backup.restore import drop_database


def cli(*args, env=None, stdin=""):
    return subprocess.run([sys.executable, "-m", "referral_service.cli", *args], input=stdin,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture
def server(app_db_url):
    return {"DATABASE_URL": app_db_url}


def test_db_url_and_migrate_use_database_url(server, app_db_url):
    assert cli("db", "url", env=server).stdout.strip() == app_db_url
    done = cli("migrate", env=server)
    assert done.returncode == 0 and "0 applied, database up to date" in done.stdout


def test_user_create_admin_and_refusals(server, app_db_url):
    made = cli("user", "create", "cli.admin@test.example", "--role", "admin", "--password-stdin",
               env=server, stdin="cli admin pass 1\n")
    assert made.returncode == 0, made.stderr
    with psycopg.connect(app_db_url) as conn:
        assert conn.execute("select role from internal.users where email = 'cli.admin@test.example'"
                            ).fetchone() == ("admin",)
    again = cli("user", "create", "cli.admin@test.example", "--password-stdin", env=server, stdin="cli admin pass 1\n")
    assert again.returncode == 1 and again.stderr.strip() == "error: an account with this email already exists"
    weak = cli("user", "create", "weak@test.example", "--password-stdin", env=server, stdin="abc\n")
    assert weak.returncode == 1 and "too short" in weak.stderr and "Traceback" not in weak.stderr


def test_unreachable_server_is_one_line(server):
    done = cli("migrate", env={"DATABASE_URL": "postgresql://nobody:x@127.0.0.1:9/nowhere"})
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the database") and done.stderr.count("\n") == 1


def test_backup_verify_and_restore_round_trip(server, app_db_url, superuser_dsn, secrets, tmp_path):
    with psycopg.connect(app_db_url) as conn:
        offers = conn.execute("select count(*), md5(string_agg(id::text || title, ',' order by id))"
                              " from api.offers").fetchone()
    out = tmp_path / "backups"
    made = cli("backup", "--verify", "--keep", "2", "--dir", str(out), env=server)
    assert made.returncode == 0, made.stderr
    assert "verified" in made.stdout
    dumps = sorted(out.glob("referral_service-*.dump"))
    assert len(dumps) == 1
    # private: a 0700 folder of 0600 files (the dump, its manifest, last_success.json, the .prom file)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == \
        {p.name: 0o600 for p in out.iterdir()} and len(list(out.iterdir())) == 4
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute("drop database if exists cli_restored with (force)")
    restored = cli("restore", str(dumps[0]), "--target", "cli_restored", env=server)
    assert restored.returncode == 0, restored.stderr
    assert "secrets installed from the environment" in restored.stdout
    try:
        with psycopg.connect(superuser_dsn.rsplit("/", 1)[0] + "/cli_restored") as conn:
            assert conn.execute("select count(*), md5(string_agg(id::text || title, ',' order by id))"
                                " from api.offers").fetchone() == offers
            # the key is not in the dump; restore put the environment's back, so the gateway's tokens verify
            assert conn.execute("select value from internal.secrets where name = 'jwt_secret'").fetchone() \
                == (secrets.jwt_secret,)
        again = cli("restore", str(dumps[0]), "--target", "cli_restored", env=server)
        assert again.returncode == 1 and "already exists" in again.stderr
    finally:  # the database and the pg_cron jobs restore scheduled for it (else they fail every minute)
        drop_database(superuser_dsn, "cli_restored")
    with psycopg.connect(app_db_url) as conn:
        assert conn.execute("select ok, verified from internal.backup_runs order by id desc limit 1"
                            ).fetchone() == (True, True)
