"""The package works outside a checkout (issue 12 item 2): build the wheel, install it into a fresh venv in
another folder, and run migrate, user create, serve and a login from there.

Lean: one wheel per session, built offline (--no-build-isolation with the test extra's hatchling); the new
venv gets the wheel without dependencies and reaches the project's installed ones through a .pth line (no
download). The .venv's editable finder is not loaded that way (only a site dir's own .pth files run).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from referral_service import localdb
from tests.ops.opscluster import OpsStack, ops_stack
from tests.support import _wait_ready

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ops() -> OpsStack:
    return ops_stack()


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A venv (in a folder far from the checkout) with the wheel installed; returns its bin folder."""
    where = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(where / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((where / "dist").glob("referral_service-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")], check=True)
    venv_site = next((where / "venv" / "lib").glob("python*/site-packages"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--target", str(venv_site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    entry_points = next(venv_site.glob("referral_service-*.dist-info")) / "entry_points.txt"
    assert "referral-service = referral_service.cli:main" in entry_points.read_text()
    (venv_site / "_project_deps.pth").write_text(site.getsitepackages()[0] + "\n")
    # the console script the entry point names (pip --target does not write scripts into the venv's bin)
    script = where / "venv" / "bin" / "referral-service"
    script.write_text(f"#!{where / 'venv' / 'bin' / 'python'}\nfrom referral_service.cli import main\nmain()\n")
    script.chmod(0o755)
    return where / "venv" / "bin"


def run(bin_dir: Path, *args: str, env: dict[str, str], stdin: str = "", cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "python"), *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def bare_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def test_installed_package_finds_its_files_outside_the_checkout(installed, tmp_path):
    probe = run(installed, "-c", "import referral_service, referral_service.config as c, importlib.resources as r;"
                "print(referral_service.__file__); print(c.MIGRATIONS_DIR); print(c.DATA_DIR);"
                "print(len(list(c.MIGRATIONS_DIR.glob('*.sql'))));"
                "print(r.files('referral_service.dashboard').joinpath('index.html').is_file())",
                env=bare_env(), cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    package, migrations, data, count, dashboard = probe.stdout.split("\n")[:5]
    assert str(installed.parent) in package and str(ROOT) not in package
    assert migrations.startswith(str(Path(package).parent)) and int(count) >= 21
    assert "site-packages" not in data and str(ROOT) not in data  # a platform folder, never the package's
    assert dashboard == "True"
    version = run(installed, "-m", "referral_service", "--version", env=bare_env(), cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("referral-service, version ")


def test_migrate_user_serve_and_login_from_the_wheel(installed, ops, tmp_path):
    stored = ops.stored_secrets()
    env = bare_env(DATABASE_URL=ops.url, REFERRAL_DATA_DIR=str(tmp_path / "data"),
                   JWT_SECRET=stored["jwt_secret"], AUTHENTICATOR_PASSWORD=stored["authenticator_password"])
    migrated = run(installed, "-m", "referral_service", "migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0 and "0 applied, database up to date" in migrated.stdout, migrated.stderr

    # the case: only DATABASE_URL, no secrets: refused, nothing changed
    alone = run(installed, "-m", "referral_service", "migrate", cwd=tmp_path,
                env=bare_env(DATABASE_URL=ops.url, REFERRAL_DATA_DIR=str(tmp_path / "other")))
    assert alone.returncode == 1 and "secrets rotate jwt" in alone.stderr

    email, password = f"wheel-{uuid.uuid4().hex[:8]}@ops.example", "a long wheel pass 7"
    made = subprocess.run([str(installed / "referral-service"), "user", "create", email, "--password-stdin"],
                          input=password + "\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert made.returncode == 0, made.stderr

    port, admin = localdb.free_port(), localdb.free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(installed / "python"), "-m", "referral_service", "serve"], cwd=tmp_path,
                                env={**env, "PGRST_SERVER_PORT": str(port), "PGRST_ADMIN_SERVER_PORT": str(admin)},
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{admin}/ready", log)
        reply = httpx.post(f"http://127.0.0.1:{port}/rpc/login", json={"email": email, "password": password},
                           timeout=10)
        assert reply.status_code == 200, reply.text
        token = reply.json()["access_token"]
        offers = httpx.get(f"http://127.0.0.1:{port}/offers?limit=1", timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
        assert offers.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/dashboard/", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
