"""No secret in statement statistics or the server log (issue 10, item 13), searched for for real.

A cluster of this module's own logs everything it can: log_statement = all, log_min_duration_statement = 0,
bind parameters in full (log_parameter_max_length = -1, also on error), pg_stat_statements tracking utility
and nested statements. Then the service provisions its secrets and people log in (through a real gateway,
and with bound parameters the way the gateway sends them), and the test greps pg_stat_statements and the log.
"""

from __future__ import annotations

import os
import secrets as random
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from referral_service import config, localdb, provision
from referral_service.migrate import migrate
from tests.conftest import app_gateway_env
from tests.support import bouncer_for, gateway_process, with_login

LOUD = {
    "log_statement": "all",
    "log_min_duration_statement": "0",
    "log_min_error_statement": "error",
    "log_parameter_max_length": "-1",
    "log_parameter_max_length_on_error": "-1",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_utility": "on",
}


@dataclass(frozen=True)
class LoudDb:
    cluster: localdb.Cluster
    app_url: str
    secrets: config.Secrets

    @property
    def log(self) -> Path:
        return self.cluster.place / "server.log"

    def log_text(self) -> str:
        time.sleep(0.3)  # the server writes its log asynchronously to our reads
        return self.log.read_text(errors="replace")

    def statements(self) -> str:
        with psycopg.connect(self.app_url) as conn:
            return "\n".join(row[0] for row in conn.execute("select query from pg_stat_statements"))

    def authenticator_url(self) -> str:
        return with_login(self.app_url, "authenticator", self.secrets.authenticator_password)


@pytest.fixture(scope="module")
def loud() -> Iterator[LoudDb]:
    cluster = localdb.Cluster(name=f"test-loud-{os.getpid()}", port=localdb.free_port())
    cluster.destroy()
    cluster.start()
    try:
        app = cluster.url(config.DB_NAME)
        with psycopg.connect(app, autocommit=True) as conn:
            for name, value in LOUD.items():
                conn.execute(f"alter system set {name} = '{value}'")
            conn.execute("select pg_reload_conf()")
        time.sleep(0.5)
        with psycopg.connect(app) as conn:
            assert conn.execute("show log_statement").fetchone() == ("all",)
        migrate(app, log=lambda _line: None)
        # Secrets of this module only, so that any occurrence in the log can only come from what follows.
        fresh = config.Secrets(superuser_password=cluster.password,
                               authenticator_password=random.token_urlsafe(36),
                               jwt_secret=random.token_urlsafe(36), demo_admin_password=random.token_urlsafe(18))
        provision.provision(app, fresh)
        yield LoudDb(cluster, app, fresh)
    finally:
        cluster.destroy()


def test_the_cluster_really_records_statements_and_parameters(loud):
    """Canaries: without this, an empty search would prove nothing."""
    utility, parameter = f"canary_{uuid.uuid4().hex}", f"canary-{uuid.uuid4().hex}"
    with psycopg.connect(loud.app_url) as conn:
        conn.execute(f"create temp table {utility} ()")
        conn.execute("select %s::text", [parameter])
    assert utility in loud.statements()  # utility statements kept verbatim
    log = loud.log_text()
    assert utility in log and parameter in log  # statements and bound parameters logged


def test_provisioning_leaves_no_secret_in_statistics_or_log(loud):
    provision.provision(loud.app_url, loud.secrets)  # again: rotation follows the same path
    for secret in (loud.secrets.authenticator_password, loud.secrets.jwt_secret):
        assert secret not in loud.statements()
        assert secret not in loud.log_text()
    with psycopg.connect(loud.app_url) as conn:
        stored = conn.execute("select rolpassword from pg_authid where rolname = 'authenticator'").fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$4096:")
    psycopg.connect(loud.authenticator_url()).close()  # the verifier matches the password


def test_operator_commands_keep_account_passwords_out_of_the_log(loud):
    password = f"operator pass {uuid.uuid4().hex}"
    provision.create_user(loud.app_url, f"op-{uuid.uuid4().hex[:8]}@logs.example", password, "user")
    assert password not in loud.statements()
    assert password not in loud.log_text()


def test_role_switch_keeps_the_authenticators_log_settings(loud):
    """Role settings apply when authenticator logs in; set_config('role', ...) and SET ROLE do not reset them."""
    settings = "select current_setting('log_parameter_max_length'), current_setting('log_parameter_max_length_on_error')"
    with psycopg.connect(loud.authenticator_url()) as conn:
        assert conn.execute(settings).fetchone() == ("0", "0")
        for role in ("anonymous", "app_user", "app_admin"):
            conn.execute("select set_config('role', %s, true)", [role])
            assert conn.execute("select current_user").fetchone() == (role,)
            assert conn.execute(settings).fetchone() == ("0", "0")
            conn.rollback()
        conn.execute("set role app_user")
        assert conn.execute(settings).fetchone() == ("0", "0")


def test_login_passwords_are_in_neither_statistics_nor_log(loud, tmp_path):
    email, password = f"login-{uuid.uuid4().hex[:8]}@logs.example", f"login pass {uuid.uuid4().hex}"
    wrong = [f"wrong pass {uuid.uuid4().hex}" for _ in range(3)]
    provision.create_user(loud.app_url, email, password, "user")

    # the way the gateway sends it: authenticator, role switch, the values as bind parameters
    with psycopg.connect(loud.authenticator_url()) as conn:
        conn.execute("select set_config('role', 'anonymous', true)")
        assert conn.execute("select api.login(%s, %s)", [email, password]).fetchone()[0]["access_token"].count(".") == 2
        conn.rollback()
        conn.execute("select set_config('role', 'anonymous', true)")
        try:  # refused (an error, or a refusal the function answers with)
            conn.execute("select api.login(%s, %s)", [email, wrong[0]])
        except psycopg.DatabaseError:
            pass
        conn.rollback()
        # a statement that fails while its parameters are bound: the error log adds them unless told not to
        conn.execute("select set_config('role', 'anonymous', true)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("select api.login(%s, %s), 1 / (random() * 0)::int", [email, wrong[1]])

    # and through a real gateway process
    with gateway_process(app_gateway_env(loud.app_url, loud.secrets), tmp_path / "gateway.log") as gw:
        ok = httpx.post(gw.url + "/rpc/login", json={"email": email, "password": password}, timeout=10)
        assert ok.status_code == 200, ok.text
        refused = httpx.post(gw.url + "/rpc/login", json={"email": email, "password": wrong[2]}, timeout=10)
        assert refused.status_code != 200

    log, statements = loud.log_text(), loud.statements()
    assert "api.login" in log and "api.login" in statements  # the logins were recorded ...
    assert "division by zero" in log
    assert email not in log  # ... without their parameters
    for secret in (password, *wrong):
        assert secret not in log
        assert secret not in statements


def test_pgbouncer_password_file_is_private_and_works(loud, tmp_path):
    """The local PgBouncer's files (its userlist holds the clear password it needs for SCRAM) are 0600."""
    old = os.umask(0o022)
    try:
        with bouncer_for(loud.app_url, {"authenticator": loud.secrets.authenticator_password},
                         tmp_path / "pgbouncer") as bouncer:
            place = (tmp_path / "pgbouncer").resolve()
            assert stat.S_IMODE(place.stat().st_mode) == 0o700
            for name in ("userlist.txt", "pgbouncer.ini"):
                assert stat.S_IMODE((place / name).stat().st_mode) == 0o600, name
            url = bouncer.url("authenticator", loud.secrets.authenticator_password)
            with psycopg.connect(url, prepare_threshold=None) as conn:
                assert conn.execute("select current_user").fetchone() == ("authenticator",)
    finally:
        os.umask(old)
