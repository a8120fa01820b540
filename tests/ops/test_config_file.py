"""PostgREST's config file, `@/path` values, `*_FILE` variables, unknown names, `--dump-config` (issue 12 item 9)
and malformed settings as one line (item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from referral_service.gateway import config_file
from referral_service.gateway.settings import GatewaySettings, SettingsError, dump, load_settings
from referral_service.service import load_ops_settings
from tests.conftest import app_gateway_env
from tests.support import gateway_process

SECRET = "config-file-secret-0123456789abcdef0123"
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "REFERRAL_"))}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def conf(tmp_path: Path, text: str) -> Path:
    return write(tmp_path, "postgrest.conf", text)


# --- the file's syntax -----------------------------------------------------------------------------------


def test_postgrest_syntax(tmp_path):
    path = conf(tmp_path, '''# postgrest.conf
db-uri       = "postgres://authenticator:pw@db:5432/app"
db-schemas   = "api, extra"   # trailing comment
db-anon-role = "web_anon"
db-pool      = 7
db-prepared-statements = false
server-host  = "$(HOST_FOR_TEST)"
db-pre-request = "say \\"hi\\" $$HOME"
jwt-secret   = "''' + SECRET + '''"
''')
    s = load_settings(config=path, env={"HOST_FOR_TEST": "0.0.0.0"})
    assert s.db_uri == "postgres://authenticator:pw@db:5432/app"
    assert (s.schemas, s.db_anon_role, s.db_pool, s.db_prepared_statements) == (["api", "extra"], "web_anon", 7, False)
    assert s.server_host == "0.0.0.0" and s.db_pre_request == 'say "hi" $HOME'
    assert s.notes == []


@pytest.mark.parametrize("line, problem", [
    ("db-pool 7", "expected `key = value`"),
    ("db-pool = seven", "a value is a double-quoted string, a number or true/false"),
    ('db-uri = "unterminated', "string without its closing quote"),
    ('db-uri = "x" extra', "unexpected text after the value of db-uri"),
    ('db-uri = "$(NOT_SET_ANYWHERE_42)"', "$(NOT_SET_ANYWHERE_42) is not set in the environment"),
    ('db-uri = "bad \\q escape"', "unknown escape"),
])
def test_syntax_errors_are_one_line_with_the_line_number(tmp_path, line, problem):
    path = conf(tmp_path, f'jwt-secret = "{SECRET}"\n\n{line}\n')
    with pytest.raises(SettingsError) as e:
        load_settings(config=path, env={})
    assert str(e.value).startswith(f"config file {path}, line 3: ") and problem in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(SettingsError, match=r"^config file .*/nope.conf: No such file or directory$"):
        load_settings(env={"PGRST_CONFIG": str(tmp_path / "nope.conf")})


# --- precedence and aliases -------------------------------------------------------------------------------


def test_environment_overrides_the_file_and_arguments_override_both(tmp_path):
    path = conf(tmp_path, f'jwt-secret = "{SECRET}"\ndb-pool = 3\nserver-port = 4000\ndb-channel = "file"\n')
    s = load_settings(config=path, env={"PGRST_DB_POOL": "9", "PGRST_DB_CHANNEL": "env"}, db_channel="arg")
    assert (s.db_pool, s.server_port, s.db_channel) == (9, 4000, "arg")
    via_env = load_settings(env={"PGRST_CONFIG": str(path)})
    assert via_env.db_pool == 3


def test_canonical_names_win_over_postgrest_aliases(tmp_path):
    path = conf(tmp_path, f'jwt-secret = "{SECRET}"\ndb-schemas = "new"\ndb-schema = "old"\nmax-rows = 5\n')
    s = load_settings(config=path, env={})
    assert s.schemas == ["new"] and s.db_max_rows == 5
    s = load_settings(env={"PGRST_JWT_SECRET": SECRET, "PGRST_DB_SCHEMA": "old", "PGRST_DB_SCHEMAS": "new"})
    assert s.schemas == ["new"]


# --- values from files -----------------------------------------------------------------------------------


def test_at_path_values_read_secrets_from_files(tmp_path):
    secret = write(tmp_path, "jwt", SECRET + "\n")  # one trailing newline dropped, as PostgREST
    uri = write(tmp_path, "uri", "postgres://authenticator:from-file@db/app\n")
    path = conf(tmp_path, f'jwt-secret = "@{secret}"\ndb-uri = "@{uri}"\n')
    s = load_settings(config=path, env={})
    assert s.jwt_secret == SECRET and s.db_uri == "postgres://authenticator:from-file@db/app"
    s = load_settings(env={"PGRST_JWT_SECRET": f"@{secret}"})
    assert s.jwt_secret == SECRET


def test_file_variables_for_every_setting(tmp_path):
    secret = write(tmp_path, "jwt", SECRET + "\n")
    pool = write(tmp_path, "pool", "6\n")
    s = load_settings(env={"PGRST_JWT_SECRET_FILE": str(secret), "PGRST_DB_POOL_FILE": str(pool)})
    assert s.jwt_secret == SECRET and s.db_pool == 6
    path = conf(tmp_path, 'jwt-secret = "from the file, and long enough to pass"\n')
    assert load_settings(config=path, env={"PGRST_JWT_SECRET_FILE": str(secret)}).jwt_secret == SECRET


def test_file_variable_problems_are_one_line(tmp_path):
    secret = write(tmp_path, "jwt", SECRET)
    with pytest.raises(SettingsError, match=r"^PGRST_JWT_SECRET_FILE: set either PGRST_JWT_SECRET or "
                                            r"PGRST_JWT_SECRET_FILE, not both$"):
        load_settings(env={"PGRST_JWT_SECRET": SECRET[::-1], "PGRST_JWT_SECRET_FILE": str(secret)})
    same = load_settings(env={"PGRST_JWT_SECRET": SECRET, "PGRST_JWT_SECRET_FILE": str(secret)})
    assert same.jwt_secret == SECRET  # what the server hands its workers
    with pytest.raises(SettingsError, match=r"^PGRST_JWT_SECRET_FILE: cannot read .*/absent: No such file"):
        load_settings(env={"PGRST_JWT_SECRET_FILE": str(tmp_path / "absent")})
    with pytest.raises(SettingsError, match=r"^jwt-secret in .*: cannot read /nonexistent/secret: No such file"):
        load_settings(config=conf(tmp_path, 'jwt-secret = "@/nonexistent/secret"\n'), env={})
    short = write(tmp_path, "short", "short\n")
    with pytest.raises(SettingsError, match=r"^PGRST_JWT_SECRET_FILE: the JWT secret must be at least 32"):
        load_settings(env={"PGRST_JWT_SECRET_FILE": str(short)})


# --- unknown and unsupported names -----------------------------------------------------------------------


def test_unknown_config_key_is_refused_with_the_nearest_name(tmp_path):
    with pytest.raises(SettingsError) as e:
        load_settings(config=conf(tmp_path, f'jwt-secret = "{SECRET}"\ndb-max-row = 5\n'), env={})
    assert str(e.value) == f"config file {tmp_path / 'postgrest.conf'}: db-max-row is not a known setting " \
                           "(did you mean db-max-rows?)"


def test_unknown_variables_are_reported_with_the_nearest_name():
    s = load_settings(env={"PGRST_JWT_SECRET": SECRET, "PGRST_DB_MAX_ROW": "5", "PGRST_SEVRER_PORT": "1",
                           "PGRST_SERVICE_HOST": "10.0.0.1"})  # the last: a Kubernetes service link
    assert s.db_max_rows is None and s.server_port == 3000  # ignored, but not silently:
    assert "PGRST_DB_MAX_ROW is not a known setting (did you mean PGRST_DB_MAX_ROWS?); ignored" in s.notes
    assert "PGRST_SEVRER_PORT is not a known setting (did you mean PGRST_SERVER_PORT?); ignored" in s.notes
    assert any(n.startswith("PGRST_SERVICE_HOST is not a known setting") for n in s.notes)


def test_postgrest_settings_we_do_not_implement_are_not_supported_not_unknown(tmp_path):
    s = load_settings(config=conf(tmp_path, 'server-unix-socket = "/tmp/x.sock"\napp.settings.k = "v"\n'),
                      env={"PGRST_JWT_SECRET": SECRET, "PGRST_SERVER_TIMING_ENABLED": "true",
                           "PGRST_APP_SETTINGS_K": "v"})
    assert "PGRST_SERVER_TIMING_ENABLED is a PostgREST setting this gateway does not support; ignored" in s.notes
    assert "PGRST_APP_SETTINGS_K is a PostgREST setting this gateway does not support; ignored" in s.notes
    assert any("server-unix-socket is a PostgREST setting this gateway does not support" in n for n in s.notes)
    assert any("app.settings.k is a PostgREST setting" in n for n in s.notes)


def test_every_field_of_the_model_is_known_by_both_names(tmp_path):
    """Derived from the model: a field someone adds is known without touching the check."""
    env = {"PGRST_JWT_SECRET": SECRET}
    lines = []
    for name in GatewaySettings.model_fields:
        env[f"PGRST_{name.upper()}"] = ""
        lines.append(f'{name.replace("_", "-")} = ""')
    env.pop("PGRST_JWT_SECRET")
    env["PGRST_JWT_SECRET"] = SECRET
    path = conf(tmp_path, "\n".join(lines) + "\n")
    from referral_service.gateway.sources import gather

    found = gather(GatewaySettings, env, path)
    assert found.notes == []
    assert set(found.values) == set(GatewaySettings.model_fields)


def test_service_keys_in_the_same_file(tmp_path, monkeypatch):
    path = conf(tmp_path, f'jwt-secret = "{SECRET}"\nreferral-rate-limit = "5/60"\nreferral-ready-timeout = 4\n')
    monkeypatch.setenv("PGRST_CONFIG", str(path))
    monkeypatch.setenv("REFERRAL_READY_TIMEOUT", "1.5")
    ops = load_ops_settings()
    assert ops.rate_limit == "5/60" and ops.ready_timeout == 1.5  # the environment wins here too
    conf(tmp_path, 'referral-rate-limt = "5/60"\n')
    with pytest.raises(SettingsError, match=r"referral-rate-limt is not a known setting \(did you mean "
                                            r"referral-rate-limit\?\)"):
        load_ops_settings()


# --- --dump-config -----------------------------------------------------------------------------------------


def test_dump_masks_secrets_and_reads_back(tmp_path):
    s = load_settings(env={"PGRST_JWT_SECRET": SECRET, "PGRST_DB_URI": "postgresql://authenticator:hunter2@db/app",
                           "PGRST_DB_LISTEN_URI": "host=db user=authenticator password='p w' dbname=app",
                           "PGRST_DB_MAX_ROWS": "50"})
    text = dump(s)
    assert SECRET not in text and "hunter2" not in text and "p w" not in text
    assert 'jwt-secret = "***"' in text and 'db-uri = "postgresql://authenticator:***@db/app"' in text
    assert "db-max-rows = 50" in text
    back = config_file.read(write(tmp_path, "dumped.conf", text), env={})
    assert back["db-max-rows"] == 50 and back["db-uri"] == "postgresql://authenticator:***@db/app"


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "referral_service.cli", *args], env={**CLEAN, **env},
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def test_serve_dump_config_reads_the_config_option(tmp_path):
    secret = write(tmp_path, "jwt", SECRET + "\n")
    path = conf(tmp_path, f'db-uri = "postgresql://authenticator:hunter2@db/app"\njwt-secret = "@{secret}"\n'
                          'server-port = 4100\nreferral-rate-limit = "7/60"\n')
    done = cli("serve", "--config", str(path), "--dump-config", env={"PGRST_DB_POOL": "3", "PGRST_DB_POL": "1"})
    assert done.returncode == 0, done.stderr
    assert "server-port = 4100" in done.stdout and "db-pool = 3" in done.stdout
    assert 'referral-rate-limit = "7/60"' in done.stdout
    assert SECRET not in done.stdout and "hunter2" not in done.stdout
    assert "PGRST_DB_POL is not a known setting (did you mean PGRST_DB_POOL?)" in done.stderr


def test_malformed_setting_breaks_neither_help_nor_gives_a_traceback():
    env = {"PGRST_SERVER_PORT": "abc", "PGRST_DB_URI": "postgresql://x@127.0.0.1:1/x", "PGRST_JWT_SECRET": SECRET}
    assert cli("--help", env=env).returncode == 0
    assert cli("serve", "--help", env=env).returncode == 0
    done = cli("serve", env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: PGRST_SERVER_PORT: Input should be a valid integer, unable to parse string as an integer"]


# --- a real service configured by a file alone -------------------------------------------------------------


def test_service_runs_from_a_config_file_with_secrets_in_files(app_db_url, secrets, tmp_path):
    env = app_gateway_env(app_db_url, secrets)
    uri_file = write(tmp_path, "db_uri", env.pop("PGRST_DB_URI") + "\n")
    secret_file = write(tmp_path, "jwt_secret", env.pop("PGRST_JWT_SECRET") + "\n")
    lines = [f'db-uri = "@{uri_file}"', f'db-schemas = "{env.pop("PGRST_DB_SCHEMAS")}"',
             f'db-anon-role = "{env.pop("PGRST_DB_ANON_ROLE")}"', f'db-pool = {env.pop("PGRST_DB_POOL")}']
    lines += [f'{k.lower().replace("_", "-")} = "{v}"' for k, v in env.items()]  # referral-* keys
    path = conf(tmp_path, "\n".join(lines) + "\n")
    # two workers: they re-read the settings, with the values the server hands on to them
    with gateway_process({"PGRST_CONFIG": str(path), "PGRST_JWT_SECRET_FILE": str(secret_file),
                          "REFERRAL_WORKERS": "2"}, tmp_path / "gw.log") as gw:
        r = httpx.get(gw.url + "/offers?limit=1", timeout=10)
        assert r.status_code == 200, r.text
        bad = httpx.get(gw.url + "/offers?limit=1", headers={"Authorization": "Bearer a.b.c"}, timeout=10)
        assert bad.status_code == 401
    assert secrets.jwt_secret not in (tmp_path / "gw.log").read_text()
