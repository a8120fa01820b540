"""Where things are and which secrets to use: environment first, safe local defaults second.

Paths work from a checkout and from an installed wheel alike:

* migrations: ``REFERRAL_MIGRATIONS_DIR``, else the checkout's ``migrations/``, else the copy inside the
  package (the wheel ships them as ``referral_service/migrations``, read through importlib.resources);
* data (local cluster, generated secrets, backups): ``REFERRAL_DATA_DIR``, else the checkout's ``.data/``,
  else a platform folder (``/var/lib/referral-service`` as root, ``$XDG_DATA_HOME/referral-service`` or
  ``~/.local/share/referral-service`` otherwise) — never inside site-packages.

Nothing here parses a number at import time: a malformed ``REFERRAL_DB_PORT`` must not break ``--help``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import OperatorError

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parents[1]  # the checkout, when running from one (src/referral_service/..)
DB_NAME = "referral_service"
DEFAULT_DB_PORT = 54329


def in_checkout() -> bool:
    """Running from a source checkout (editable install or PYTHONPATH), not from an installed wheel."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "migrations").is_dir()


def _migrations_dir() -> Path:
    if os.environ.get("REFERRAL_MIGRATIONS_DIR"):
        return Path(os.environ["REFERRAL_MIGRATIONS_DIR"])
    if in_checkout():
        return PROJECT_ROOT / "migrations"
    return Path(str(resources.files(__package__).joinpath("migrations")))


def _platform_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/referral-service")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "referral-service"


def _data_dir() -> Path:
    if os.environ.get("REFERRAL_DATA_DIR"):
        return Path(os.environ["REFERRAL_DATA_DIR"])
    return PROJECT_ROOT / ".data" if in_checkout() else _platform_data_dir()


MIGRATIONS_DIR = _migrations_dir()
DATA_DIR = _data_dir()


def int_setting(name: str, default: int, low: int = 0, high: int = 65535) -> int:
    """An integer from the environment, or one operator-error line naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OperatorError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise OperatorError(f"{name}={value} is out of range ({low}-{high})")
    return value


def requested_db_port() -> int | None:
    """REFERRAL_DB_PORT when set (checked), else None."""
    return int_setting("REFERRAL_DB_PORT", 0, 1, 65535) if os.environ.get("REFERRAL_DB_PORT", "").strip() else None


def _stored_port(cluster_home: Path) -> int | None:
    try:
        return int(json.loads((cluster_home / "cluster.json").read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _default_db_port() -> int:
    """The port of the default local cluster: the one stored with it, else REFERRAL_DB_PORT, else 54329."""
    stored = _stored_port(DATA_DIR / "pg")
    if stored:
        return stored
    raw = os.environ.get("REFERRAL_DB_PORT", "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else DEFAULT_DB_PORT


DB_PORT = _default_db_port()  # what other modules default to (PgBouncer's upstream); Cluster() checks it

# name in secrets.json -> environment variable that overrides it (or <VAR>_FILE: a file holding it)
_SECRET_ENV = {
    "superuser_password": "REFERRAL_SUPERUSER_PASSWORD",
    "authenticator_password": "AUTHENTICATOR_PASSWORD",
    "jwt_secret": "JWT_SECRET",
    "demo_admin_password": "DEMO_ADMIN_PASSWORD",
}


@dataclass(frozen=True)
class Secrets:
    superuser_password: str
    authenticator_password: str
    jwt_secret: str
    demo_admin_password: str
    # name -> where it came from ("JWT_SECRET", "JWT_SECRET_FILE", or the secrets file's path): for messages
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def source(self, name: str) -> str:
        return self.sources.get(name, "the caller")

    def from_environment(self, name: str) -> bool:
        return self.source(name) in (_SECRET_ENV[name], _SECRET_ENV[name] + "_FILE")


def secrets_file(data_dir: Path | None = None) -> Path:
    return (data_dir or DATA_DIR) / "secrets.json"


def _from_env(env: str) -> tuple[str, str] | None:
    if os.environ.get(env):
        return os.environ[env], env
    path = os.environ.get(env + "_FILE")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise OperatorError(f"{env}_FILE={path}: cannot read it ({exc.strerror})") from None
        value = text[:-1] if text.endswith("\n") else text  # one trailing newline, as PostgREST's @file
        if not value:
            raise OperatorError(f"{env}_FILE={path} is empty")
        return value, env + "_FILE"
    return None


def load_secrets(data_dir: Path | None = None) -> Secrets:
    """Secrets from the environment (VAR or VAR_FILE), else from `secrets.json` in the data folder,
    generated (mode 0600) on first use."""
    path = secrets_file(data_dir)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in _SECRET_ENV if name not in stored]
    if missing:
        for name in missing:
            stored[name] = secrets.token_urlsafe(36)
        write_secrets_file(stored, path)
    values, sources = {}, {}
    for name, env in _SECRET_ENV.items():
        given = _from_env(env)
        values[name], sources[name] = given if given else (stored[name], str(path))
    return Secrets(**values, sources=sources)


def write_secrets_file(stored: dict[str, str], path: Path) -> None:
    """Replace the secrets file atomically, 0600 from its creation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(stored, f, indent=2)
    os.replace(tmp, path)


def store_secret(name: str, value: str, data_dir: Path | None = None) -> Path:
    """Write one secret into the secrets file (after a rotation)."""
    path = secrets_file(data_dir)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    stored[name] = value
    write_secrets_file(stored, path)
    return path
