"""Run the gateway with uvicorn (uvloop + httptools): ``python -m referral_service.gateway.server``.

The sockets are bound here, before the app is built: the API socket (``PGRST_SERVER_HOST``/``PORT``) and,
when ``PGRST_ADMIN_SERVER_PORT`` is set, the admin socket (``PGRST_ADMIN_SERVER_HOST``, loopback by default).
One uvicorn server (or each of its workers) serves both; the app tells them apart by ``scope["server"]``.
Connections go through :class:`.http_protocol.EdgeProtocol` (header deadline, header and connection caps).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from .http_protocol import EdgeLimits, EdgeProtocol
from .settings import GatewaySettings, SettingsError, load_settings

PLAIN = "referral_service.gateway.server:_factory"
STARTUP_FAILURE = 3  # uvicorn's exit status when the app could not start
# Applied by uvicorn in the server process and again in each worker: plain-text records (stderr), one line
# each, whatever a client put in a path that ends up in a message or a traceback.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": "referral_service.gateway.middleware.accesslog.OneLineFormatter",
                            "fmt": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
}


def run(settings: GatewaySettings | None = None, workers: int = 1, factory: str = PLAIN,
        exempt_peers: tuple[str, ...] = ()) -> None:
    """Serve until interrupted. With ``workers > 1`` each process builds its own app from the environment.

    ``factory`` ("module:function", called with the settings or none) lets a service wrap the gateway;
    ``exempt_peers`` (addresses/CIDRs, e.g. a reverse proxy) have no per-client connection cap."""
    settings = settings or load_settings()
    sockets = [bind(settings.server_host, settings.server_port)]
    if settings.admin_server_port is not None:
        admin = bind(settings.admin_server_host, settings.admin_server_port)
        sockets.append(admin)
        port = admin.getsockname()[1]  # the real one when 0 asked for any free port
        settings = settings.model_copy(update={"admin_server_port": port})
        os.environ["PGRST_ADMIN_SERVER_PORT"] = str(port)  # workers (and the app) read it from there
    common = {"loop": "uvloop", "http": EdgeProtocol, "ws": "none", "log_config": LOG_CONFIG,
              "log_level": "warning", "access_log": False,
              "server_header": False, "lifespan": "on", "timeout_keep_alive": settings.server_keep_alive_timeout,
              # X-Forwarded-For is judged by the rate limiter against REFERRAL_TRUSTED_PROXIES only
              "proxy_headers": False, "workers": workers}
    if workers > 1:
        # Workers re-import the app; hand them the settings through the environment they read.
        os.environ.setdefault("PGRST_JWT_SECRET", settings.jwt_secret)
        config = uvicorn.Config(factory, factory=True, **common)
    else:
        module, name = factory.split(":")
        config = uvicorn.Config(getattr(importlib.import_module(module), name)(settings), **common)
    config.edge_limits = EdgeLimits.from_settings(settings, tuple(exempt_peers))  # read by EdgeProtocol (pickled to the workers)
    if workers > 1:
        Multiprocess(config, sockets=sockets).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket (uvicorn calls listen), inheritable by the worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _factory(settings: GatewaySettings | None = None):  # noqa: ANN202 - uvicorn's factory hook
    from .app import create_app

    return create_app(settings)


def main() -> None:
    try:
        run(load_settings())
    except SettingsError as exc:
        print(f"referral-service: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
