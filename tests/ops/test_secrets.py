"""Secrets are installed once; a mismatch is refused with one line; only `secrets rotate` changes them,
and a JWT rotation keeps the previous key verifying for its grace period (issue 12 item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import jwt
import psycopg
import pytest

from referral_service import localdb, secrets
from tests.ops.opscluster import OpsStack, ops_stack
from tests.support import _wait_ready


@pytest.fixture(scope="session")
def ops() -> OpsStack:
    return ops_stack()


def installed_state(ops: OpsStack) -> tuple:
    with psycopg.connect(ops.url) as conn:
        key = conn.execute("select value from internal.secrets where name = 'jwt_secret'").fetchone()[0]
        verifier = conn.execute("select rolpassword from pg_authid where rolname = 'authenticator'").fetchone()[0]
    return key, verifier


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_migrate_again_changes_nothing(ops):
    before = installed_state(ops)
    done = ops.cli("migrate")
    assert done.returncode == 0 and "0 applied" in done.stdout and "installed" not in done.stdout
    assert installed_state(ops) == before


@pytest.mark.parametrize("variable, command", [("JWT_SECRET", "secrets rotate jwt"),
                                               ("AUTHENTICATOR_PASSWORD", "secrets rotate authenticator")])
def test_a_different_secret_in_the_environment_is_refused(ops, variable, command):
    before = installed_state(ops)
    done = ops.cli("migrate", env={variable: "another-value-" + uuid.uuid4().hex})
    assert f"`referral-service {command}`" in one_line_error(done)
    assert installed_state(ops) == before


def test_secret_files_work_like_variables(ops, tmp_path):
    stored = ops.stored_secrets()
    (tmp_path / "jwt").write_text(stored["jwt_secret"] + "\n")  # one trailing newline, as Docker secrets
    done = ops.cli("migrate", env={"JWT_SECRET_FILE": str(tmp_path / "jwt")})
    assert done.returncode == 0, done.stderr
    (tmp_path / "jwt").write_text("x" * 40)
    assert "JWT_SECRET_FILE" in one_line_error(ops.cli("migrate", env={"JWT_SECRET_FILE": str(tmp_path / "jwt")}))


def test_a_fresh_data_folder_with_only_database_url_is_refused(ops, tmp_path):
    """The issue's case: an installed copy that finds no secrets would have generated and installed new ones."""
    before = installed_state(ops)
    done = ops.cli("migrate", env={"DATABASE_URL": ops.url, "REFERRAL_DATA_DIR": str(tmp_path / "elsewhere")})
    assert "is not the one installed in the database" in one_line_error(done)
    assert installed_state(ops) == before


def test_rotating_needs_the_new_key_when_the_environment_holds_it(ops):
    stored = ops.stored_secrets()
    done = ops.cli("secrets", "rotate", "jwt", env={"JWT_SECRET": stored["jwt_secret"]})
    assert "--key-stdin" in one_line_error(done)


def login(base: str, email: str, password: str) -> str:
    reply = httpx.post(base + "/rpc/login", json={"email": email, "password": password}, timeout=10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return body["access_token"] if isinstance(body, dict) else body


def status_with(base: str, token: str) -> httpx.Response:
    return httpx.get(base + "/offers?limit=1", headers={"Authorization": f"Bearer {token}"}, timeout=10)


class Serve:
    """`referral-service serve` of the ops stack: the gateway gets the database's JWKS from serve itself."""

    def __init__(self, ops: OpsStack, log) -> None:
        self.port, admin = localdb.free_port(), localdb.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**ops.env, "PGRST_SERVER_PORT": str(self.port), "PGRST_ADMIN_SERVER_PORT": str(admin),
               "REFERRAL_RATE_LIMIT": "0", "REFERRAL_AUTH_RATE_LIMIT": "0"}
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "referral_service", "serve"], env=env,
                                         stdout=out, stderr=subprocess.STDOUT)
        _wait_ready(self.proc, f"http://127.0.0.1:{admin}/ready", log)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def test_rotation_keeps_the_previous_key_verifying(ops, tmp_path):
    email, password = f"rotate-{uuid.uuid4().hex[:8]}@ops.example", "a long rotate pass 42"
    made = ops.cli("user", "create", email, "--password-stdin", stdin=password + "\n")
    assert made.returncode == 0, made.stderr
    first_key = ops.stored_secrets()["jwt_secret"]

    gw = Serve(ops, tmp_path / "one.log")
    try:
        old_token = login(gw.url, email, password)
        assert jwt.get_unverified_header(old_token)["kid"] == secrets.kid(first_key)
    finally:
        gw.stop()

    rotated = ops.cli("secrets", "rotate", "jwt", "--grace", "1h")
    assert rotated.returncode == 0, rotated.stderr
    new_key = ops.stored_secrets()["jwt_secret"]  # the local secrets file follows the rotation
    assert new_key != first_key and secrets.kid(new_key) in rotated.stdout
    assert ops.cli("migrate").returncode == 0  # the environment names the installed key again

    gw = Serve(ops, tmp_path / "two.log")
    try:
        assert status_with(gw.url, old_token).status_code == 200  # the previous key still verifies
        new_token = login(gw.url, email, password)
        assert jwt.get_unverified_header(new_token)["kid"] == secrets.kid(new_key)
        assert status_with(gw.url, new_token).status_code == 200
    finally:
        gw.stop()

    # no grace: the key just replaced stops verifying at once; the older one is still inside its hour
    again = ops.cli("secrets", "rotate", "jwt", "--grace", "0")
    assert again.returncode == 0, again.stderr
    gw = Serve(ops, tmp_path / "three.log")
    try:
        refused = status_with(gw.url, new_token)
        assert refused.status_code == 401
        assert refused.json()["message"] == "No suitable key or wrong key type"
        assert status_with(gw.url, old_token).status_code == 200
    finally:
        gw.stop()
    with psycopg.connect(ops.url) as conn:
        keys = conn.execute("select internal.jwt_keyset()").fetchone()[0]["keys"]
    assert [k["kid"] for k in keys] == [secrets.kid(ops.stored_secrets()["jwt_secret"]), secrets.kid(first_key)]
    assert "exp" in keys[1] and "exp" not in keys[0]
    assert json.dumps(keys).count(first_key) == 0  # keys travel base64url-encoded, as JWK "k"


def test_staged_key_is_accepted_before_it_signs(ops):
    staged = ops.cli("secrets", "rotate", "jwt", "--stage")
    assert staged.returncode == 0 and "staged JWT key" in staged.stdout, staged.stderr
    with psycopg.connect(ops.url) as conn:
        kids = [k["kid"] for k in conn.execute("select internal.jwt_keyset()").fetchone()[0]["keys"]]
        signing = conn.execute("select auth.jwt_kid(internal.secret('jwt_secret'))").fetchone()[0]
    assert len(kids) >= 2 and kids[0] == signing and kids[1] in staged.stdout
    activated = ops.cli("secrets", "rotate", "jwt")
    assert activated.returncode == 0 and kids[1] in activated.stdout.split(";")[0], activated.stderr
    assert secrets.kid(ops.stored_secrets()["jwt_secret"]) == kids[1]


def test_authenticator_rotation_follows_into_the_secrets_file(ops):
    before = installed_state(ops)[1]
    done = ops.cli("secrets", "rotate", "authenticator")
    assert done.returncode == 0, done.stderr
    after = installed_state(ops)[1]
    assert after != before and secrets.scram_matches(after, ops.stored_secrets()["authenticator_password"])
    assert ops.cli("migrate").returncode == 0
    shown = ops.cli("secrets", "status")
    assert shown.returncode == 0 and ops.stored_secrets()["authenticator_password"] not in shown.stdout


def test_one_argument_signer_uses_the_current_key(ops):
    with psycopg.connect(ops.url) as conn:
        token = conn.execute("select auth.jwt_sign('{\"role\": \"anonymous\"}'::jsonb)").fetchone()[0]
    key = ops.stored_secrets()["jwt_secret"]
    assert jwt.decode(token, key, algorithms=["HS256"]) == {"role": "anonymous"}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": secrets.kid(key)}
