"""Backups never expose the signing key (issue 10, item 12), against the real migrated database.

Whoever reads a dump must not learn the JWT signing key (internal.secrets): it would let them forge an admin
token. So: backup files are 0600 in a 0700 folder from the moment they exist, the secrets' rows are not in the
dump at all, `restore` installs the environment's secrets, and `backup --verify` checks that no secret came back.
"""

import os
import re
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from psycopg import sql

from referral_service import backup as bk
from tests.conftest import app_gateway_env
from tests.support import gateway_process, with_database, with_login

# Table or column names that say "this holds a secret": each such table must have its data left out.
SECRETISH = re.compile(r"secret|signing|private_key", re.IGNORECASE)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a plain open() makes world-readable files (what the old code relied on)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def restored(superuser_dsn: str) -> Iterator[list[str]]:
    """Names of databases the test restores into; dropped afterwards."""
    names: list[str] = []
    yield names
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _new_db(superuser_dsn: str, names: list[str]) -> str:
    name = f"rs_secrets_{uuid.uuid4().hex[:8]}"
    names.append(name)
    return with_database(superuser_dsn, name)


def test_every_backup_file_is_private_from_its_creation(app_db_url, tmp_path, umask_022):
    out = tmp_path / "backups"
    partial_modes: list[int] = []

    def progress(done: int, total: int, table: str) -> None:  # called while pg_dump writes the partial file
        partial_modes.extend(_mode(p) for p in out.glob(".*.partial"))

    dump = bk.backup(app_db_url, out, progress=progress, verify=True)

    assert _mode(out) == 0o700
    assert partial_modes and set(partial_modes) == {0o600}, "the partial dump was readable by others while written"
    files = sorted(out.iterdir())
    names = {p.name for p in files}
    assert {dump.name, dump.name.replace(".dump", ".manifest.json"), bk.LAST_SUCCESS_FILE, bk.METRICS_FILE} <= names
    assert {p.name: _mode(p) for p in files} == dict.fromkeys(names, 0o600)


def test_an_open_folder_and_old_dumps_in_it_are_tightened(app_db_url, tmp_path, umask_022):
    out = tmp_path / "backups"
    out.mkdir()
    out.chmod(0o755)
    old = out / "referral_service-20240101T000000Z.dump"
    old.write_text("an old dump that still holds the key")
    old.chmod(0o644)
    warnings: list[str] = []

    bk.backup(app_db_url, out, warn=warnings.append)

    assert _mode(out) == 0o700 and _mode(old) == 0o600
    assert any("tightened to 0700" in w for w in warnings) and any("now 0600" in w for w in warnings)
    assert all(_mode(p) == 0o600 for p in out.iterdir())


def test_dump_and_manifest_hold_no_secret(app_db_url, secrets, tmp_path):
    with psycopg.connect(app_db_url) as conn:  # the key is there to leak: the test means something
        assert conn.execute("select value from internal.secrets where name = 'jwt_secret'").fetchone() \
            == (secrets.jwt_secret,)
    dump = bk.backup(app_db_url, tmp_path)

    script = subprocess.run([bk.common.pg_tool("pg_restore"), "--file=-", str(dump)], capture_output=True, text=True,
                            check=True).stdout
    assert "CREATE TABLE internal.secrets" in script  # the table itself is restored (empty)
    assert "COPY internal.secrets" not in script
    for secret in (secrets.jwt_secret, secrets.authenticator_password, secrets.superuser_password):
        assert secret not in script
        assert secret.encode() not in dump.read_bytes()
    manifest = dump.with_name(dump.name.replace(".dump", ".manifest.json")).read_text()
    assert "internal.secrets" not in manifest.split('"data_excluded"')[0]


def test_every_secret_looking_table_is_left_out_of_dumps(app_db_url):
    """A class check: a new table (or column) named like a secret must join backup.SECRET_TABLES."""
    with psycopg.connect(app_db_url) as conn:
        rows = conn.execute("""
            select distinct c.table_schema || '.' || c.table_name, c.table_name, c.column_name
            from information_schema.columns c join information_schema.tables t using (table_schema, table_name)
            where t.table_type = 'BASE TABLE'
              and c.table_schema not in ('pg_catalog', 'information_schema', 'cron')""").fetchall()
    secretish = {name for name, table, column in rows if SECRETISH.search(table) or SECRETISH.search(column)}
    assert "internal.secrets" in secretish
    assert secretish <= set(bk.SECRET_TABLES)


def test_verify_refuses_a_dump_that_carries_secrets(app_db_url, tmp_path):
    """A dump taken the old way (every table's data) is caught by the verification, not passed as good."""
    leaky = tmp_path / "referral_service-20240101T000000Z.dump"
    conninfo, env = bk.common.split_secret(app_db_url)
    subprocess.run([bk.common.pg_tool("pg_dump"), "--format=custom", f"--file={leaky}", f"--dbname={conninfo}"],
                   env=env, check=True, capture_output=True)
    with pytest.raises(bk.VerifyError, match=r"internal\.secrets: \d+ row\(s\) of secrets in the dump"):
        bk.verify(leaky, app_db_url, use_manifest=False)


def test_restore_installs_the_environments_secrets_and_the_gateway_accepts_its_tokens(
        app_db_url, superuser_dsn, secrets, restored, tmp_path):
    email, password = f"restore-{uuid.uuid4().hex[:8]}@test.example", "restore pass 123"
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.create_user(%s, %s, 'user')", [email, password])
    try:
        dump = bk.backup(app_db_url, tmp_path, verify=True)
    finally:
        with psycopg.connect(app_db_url, autocommit=True) as conn:
            conn.execute("delete from internal.users where email = %s", [email])

    bare = _new_db(superuser_dsn, restored)  # without secrets: the table is empty, nobody can log in
    assert bk.restore(dump, bare).secrets_installed is False
    with psycopg.connect(bare) as conn:
        assert conn.execute("select count(*) from internal.secrets").fetchone() == (0,)

    target = _new_db(superuser_dsn, restored)
    assert bk.restore(dump, target, secrets=secrets).secrets_installed is True
    with psycopg.connect(target) as conn:
        assert conn.execute("select value from internal.secrets where name = 'jwt_secret'").fetchone() \
            == (secrets.jwt_secret,)

    # SQL login as the gateway does it (authenticator, role switch, bound parameters), verified in Python
    login_url = with_login(target, "authenticator", secrets.authenticator_password)
    with psycopg.connect(login_url) as conn:
        conn.execute("select set_config('role', 'anonymous', true)")
        reply = conn.execute("select api.login(%s, %s)", [email, password]).fetchone()[0]
    token = reply if isinstance(reply, str) else reply["access_token"]  # a session since issue 11
    assert jwt.decode(token, secrets.jwt_secret, algorithms=["HS256"])["role"] == "app_user"

    # and a real gateway on the restored database, configured from the same environment, accepts it
    with gateway_process(app_gateway_env(target, secrets), tmp_path / "gateway.log") as gw:
        fresh = httpx.post(gw.url + "/rpc/login", json={"email": email, "password": password}, timeout=10)
        assert fresh.status_code == 200, fresh.text
        for bearer in (token, fresh.json()["access_token"]):
            mine = httpx.get(gw.url + "/users", headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
            assert mine.status_code == 200, mine.text
            assert [row["email"] for row in mine.json()] == [email]
