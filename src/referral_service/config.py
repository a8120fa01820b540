"""Where things are and which secrets to use: environment first, safe local defaults second."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = Path(os.environ.get("REFERRAL_MIGRATIONS_DIR", PROJECT_ROOT / "migrations"))
DATA_DIR = Path(os.environ.get("REFERRAL_DATA_DIR", PROJECT_ROOT / ".data"))
DB_NAME = "referral_service"
DB_PORT = int(os.environ.get("REFERRAL_DB_PORT", "54329"))
GATEWAY_PORT = int(os.environ.get("PGRST_SERVER_PORT", "3000"))

# name in secrets.json -> environment variable that overrides it
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


def load_secrets(data_dir: Path = DATA_DIR) -> Secrets:
    """Secrets from the environment, else from `.data/secrets.json`, generated (mode 0600) on first use."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in _SECRET_ENV if name not in stored]
    if missing:
        for name in missing:
            stored[name] = secrets.token_urlsafe(36)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f, indent=2)
    return Secrets(**{name: os.environ.get(env) or stored[name] for name, env in _SECRET_ENV.items()})
