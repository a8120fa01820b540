"""Run the gateway with uvicorn (uvloop + httptools): ``python -m referral_service.gateway.server``."""

from __future__ import annotations

import importlib
import os
import sys

import uvicorn

from .settings import GatewaySettings, SettingsError, load_settings


PLAIN = "referral_service.gateway.server:_factory"


def run(settings: GatewaySettings | None = None, workers: int = 1, factory: str = PLAIN) -> None:
    """Serve until interrupted. With ``workers > 1`` each process builds its own app from the environment.

    ``factory`` ("module:function", called with the settings or none) lets a service wrap the gateway."""
    settings = settings or load_settings()
    common = {"host": settings.server_host, "port": settings.server_port, "loop": "uvloop", "http": "httptools",
              "log_level": "warning", "access_log": False, "server_header": False, "lifespan": "on",
              # X-Forwarded-For is judged by the rate limiter against REFERRAL_TRUSTED_PROXIES only
              "proxy_headers": False}
    if workers > 1:
        # Workers re-import the app; hand them the settings through the environment they read.
        os.environ.setdefault("PGRST_JWT_SECRET", settings.jwt_secret)
        uvicorn.run(factory, factory=True, workers=workers, **common)
    else:
        module, name = factory.split(":")
        uvicorn.run(getattr(importlib.import_module(module), name)(settings), **common)


def _factory(settings: GatewaySettings | None = None):  # noqa: ANN202 - uvicorn's factory hook
    from .app import create_app

    return create_app(settings)


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"referral-service: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run(settings)


if __name__ == "__main__":
    main()
