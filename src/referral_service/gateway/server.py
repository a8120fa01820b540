"""Run the gateway with uvicorn (uvloop + httptools): ``python -m referral_service.gateway.server``.

The sockets are bound here, before the app is built: the API socket (``PGRST_SERVER_HOST``/``PORT``) and,
when ``PGRST_ADMIN_SERVER_PORT`` is set, the admin socket (``PGRST_ADMIN_SERVER_HOST``, loopback by default).
One uvicorn server (or each of its workers) serves both; the app tells them apart by ``scope["server"]``.
Connections go through :class:`.http_protocol.EdgeProtocol` (header deadline, header and connection caps).

"listening" is logged once the sockets are bound and listening (connections queue from then on); a port
that is taken is one :class:`SettingsError` line and exit status 2, before anything else starts.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from .. import logging as service_logging
from .http_protocol import EdgeLimits, EdgeProtocol
from .settings import GatewaySettings, SettingsError, load_settings

PLAIN = "referral_service.gateway.server:_factory"
STARTUP_FAILURE = 3  # uvicorn's exit status when the app could not start
BACKLOG = 2048  # uvicorn's default, used when it calls listen() again on our sockets


def run(settings: GatewaySettings | None = None, workers: int = 1, factory: str = PLAIN,
        exempt_peers: tuple[str, ...] = ()) -> None:
    """Serve until interrupted. With ``workers > 1`` each process builds its own app from the environment.

    ``factory`` ("module:function", called with the settings or none) lets a service wrap the gateway;
    ``exempt_peers`` (addresses/CIDRs, e.g. a reverse proxy) have no per-client connection cap."""
    settings = settings or load_settings()
    service_logging.configure(settings.log_level)
    log = service_logging.get("referral_service.server")
    for note in settings.notes:  # unknown or unsupported names in the environment or the config file
        log.warning(note)
    sockets = [bind(settings.server_host, settings.server_port)]
    urls = {"url": _url(settings.server_host, sockets[0])}
    if settings.admin_server_port is not None:
        admin = bind(settings.admin_server_host, settings.admin_server_port)
        sockets.append(admin)
        port = admin.getsockname()[1]  # the real one when 0 asked for any free port
        settings = settings.model_copy(update={"admin_server_port": port})
        os.environ["PGRST_ADMIN_SERVER_PORT"] = str(port)  # workers (and the app) read it from there
        urls["admin_url"] = _url(settings.admin_server_host, admin)
    log.info("listening", workers=workers, **urls)
    common = {"loop": "uvloop", "http": EdgeProtocol, "ws": "none",
              "log_config": service_logging.dict_config(settings.log_level),
              "log_level": service_logging.LEVELS[settings.log_level], "access_log": False, "backlog": BACKLOG,
              "server_header": False, "lifespan": "on", "timeout_keep_alive": settings.server_keep_alive_timeout,
              # X-Forwarded-For is judged by the rate limiter against REFERRAL_TRUSTED_PROXIES only
              "proxy_headers": False, "workers": workers}
    if workers > 1:
        # Workers re-import the app; hand them the settings through the environment they read.
        if settings.jwt_secret:  # none: anonymous only, as PostgREST
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
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
