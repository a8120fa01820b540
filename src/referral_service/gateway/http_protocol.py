"""The HTTP edge: uvicorn's httptools protocol with the limits a public server needs, before the app runs.

uvicorn bounds neither the time a client may take to send its headers, nor their number and size, nor how
many connections one address holds. This subclass adds them (settings in :mod:`.settings`, ``PGRST_SERVER_*``):

* **header deadline** (``server_header_timeout``, 10 s): from the connection's start (or, on a kept-alive
  connection, from the first byte after the previous response) to the end of the headers. Trickling bytes
  never extends it. When it expires: 408 with PostgREST's error body if part of a request arrived, a silent
  close if nothing did. Between requests the idle limit is uvicorn's own ``timeout_keep_alive`` (30 s).
* **header caps** (``server_max_headers`` 100, ``server_max_header_bytes`` 16 KiB of names and values): 431
  and close. The bytes buffered before the end of the headers (request line included) are capped too, so one
  endless header line or URL cannot grow a buffer (414 when it is the URL).
* **connection caps** (not on the admin socket) per worker process (``server_max_connections`` 1000 in total,
  ``server_max_client_connections`` 64 per peer address): a connection beyond them is closed at once,
  before a byte is read: the cheapest refusal, and it holds nothing. With N workers the kernel spreads
  connections over them, so one address gets up to N × the cap. Trusted proxies (the service passes
  ``REFERRAL_TRUSTED_PROXIES``) have no per-client cap: behind one, every client shares its address.

Refusals are answered in PostgREST's error shape (``{"code","details","hint","message"}``, compact,
key-sorted) with ``Connection: close``; malformed HTTP (httptools refuses it) too, instead of uvicorn's text.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from . import errors

log = logging.getLogger("referral_service.gateway.edge")
REQUEST_LINE_SLACK = 1024  # method, version and spaces around the URL
LINGER = 2.0  # seconds to read and drop what a refused client still sends, so that it can read our answer


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Per-connection limits; 0 turns one off."""

    max_headers: int = 100
    max_header_bytes: int = 16384
    max_url_bytes: int = 8192
    header_timeout: float = 10.0
    max_connections: int = 1000
    max_client_connections: int = 64
    exempt: tuple[str, ...] = ()  # addresses/CIDRs without a per-client cap (a reverse proxy speaks for many)
    admin_port: int | None = None  # connections to the admin socket are never capped: a flood of the API
    #                                must not hide /ready and /metrics

    @classmethod
    def from_settings(cls, s: Any, exempt: tuple[str, ...] = ()) -> EdgeLimits:
        return cls(s.server_max_headers, s.server_max_header_bytes, s.server_max_url_bytes, s.server_header_timeout,
                   s.server_max_connections, s.server_max_client_connections, exempt, s.admin_server_port)

    def is_exempt(self, peer: str) -> bool:
        """Only asked when a peer reaches its cap, so the common path never parses an address."""
        try:
            address = ipaddress.ip_address(peer)
            return any(address in ipaddress.ip_network(n, strict=False) for n in self.exempt)
        except ValueError:
            return False

    @property
    def max_head_bytes(self) -> int:
        """Bytes a request may send before its headers end (0: unbounded)."""
        if not self.max_header_bytes:
            return 0
        return self.max_header_bytes + (self.max_url_bytes or 65536) + REQUEST_LINE_SLACK


def headers_too_large(limits: EdgeLimits) -> errors.ApiError:
    return errors.ApiError(431, "PGRSTX31", "Request header fields too large",
                           f"The limits are {limits.max_headers} headers and {limits.max_header_bytes} bytes",
                           "Send fewer or smaller headers")


def header_timeout(limits: EdgeLimits) -> errors.ApiError:
    return errors.ApiError(408, "PGRSTX08", "Request timeout",
                           f"The request headers did not arrive within {limits.header_timeout:g} seconds", None)


def malformed() -> errors.ApiError:
    return errors.ApiError(400, "PGRSTX40", "Malformed HTTP request", None, None)


_open_by_client: dict[str, int] = {}  # peer address → open connections, in this worker process
_refused = {"count": 0, "logged": 0.0}


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus :class:`EdgeLimits` (read from ``config.edge_limits``)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: EdgeLimits = getattr(config, "edge_limits", None) or EdgeLimits()
        self._deadline: Any = None  # TimerHandle of the header deadline
        self._in_head = True  # between a request's first byte (or the connection's start) and its headers' end
        self._head_started = 0.0  # loop time the current request (or the connection) began
        self._head_bytes = 0  # bytes received since then (an upper bound of its request line and headers)
        self._refusal: errors.ApiError | None = None
        self._peer: str | None = None  # counted in _open_by_client

    # --- connections -------------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        lim = self.limits
        peer = self.client[0] if self.client else None
        self._head_started = self.loop.time()
        if lim.admin_port is not None and self.server is not None and self.server[1] == lim.admin_port:
            self._arm_deadline()
            return
        if lim.max_connections and len(self.connections) > lim.max_connections:
            self._refuse_connection("PGRST_SERVER_MAX_CONNECTIONS", lim.max_connections, peer)
            return
        if peer is not None and lim.max_client_connections:
            count = _open_by_client.get(peer, 0)
            if count >= lim.max_client_connections and not (lim.exempt and lim.is_exempt(peer)):
                self._refuse_connection("PGRST_SERVER_MAX_CLIENT_CONNECTIONS", lim.max_client_connections, peer)
                return
            _open_by_client[peer] = count + 1
            self._peer = peer
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        if self._peer is not None:
            left = _open_by_client.get(self._peer, 1) - 1
            if left > 0:
                _open_by_client[self._peer] = left
            else:
                _open_by_client.pop(self._peer, None)
            self._peer = None
        super().connection_lost(exc)

    def _refuse_connection(self, setting: str, limit: int, peer: str | None) -> None:
        _refused["count"] += 1
        now = time.monotonic()
        if now - _refused["logged"] > 10:  # one line per 10 s at most: a flood must not flood the log too
            _refused["logged"] = now
            log.warning("refusing connections beyond %s=%d (latest from %s; %d refused so far)",
                        setting, limit, peer, _refused["count"])
        self.transport.abort()

    # --- the header deadline -----------------------------------------------------------------------
    # Armed at connection start; afterwards only when a request's headers do not arrive in the chunk that
    # begins it (the common case needs no timer at all), at the time that chunk arrived.

    def _arm_deadline(self) -> None:
        if self.limits.header_timeout and self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_at(self._head_started + self.limits.header_timeout,
                                               self._deadline_passed)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._head_started = self.loop.time()  # a pipelined request waits for ours: we are the slow one
            self._arm_deadline()
            return
        if self._head_bytes:
            self._send_error(header_timeout(self.limits))
        else:
            self.transport.close()

    # --- parsing -----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # refused: drop what still arrives
        cycle = self.cycle
        if not self._in_head and (cycle is None or cycle.response_complete or not cycle.more_body):
            # bytes after a complete request begin the next one (even bare CRLFs, which the parser skips):
            # they start its clock and count against its caps, also while the previous one is being answered
            self._in_head, self._head_bytes, self._head_started = True, 0, self.loop.time()
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send_error(malformed())  # no WebSockets here
            return
        except httptools.HttpParserError:
            self._send_error(self._refusal or malformed())
            return
        if self._in_head:  # the headers are not complete yet
            cap = self.limits.max_head_bytes
            if cap and self._head_bytes > cap:
                too_long_url = self.limits.max_url_bytes and len(getattr(self, "url", b"")) > self.limits.max_url_bytes
                self._send_error(errors.uri_too_long(self.limits.max_url_bytes) if too_long_url
                                 else headers_too_large(self.limits))
            else:
                self._arm_deadline()

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._deadline is not None:
            self._disarm_deadline()
        lim, headers = self.limits, self.headers
        if (lim.max_headers and len(headers) > lim.max_headers) or (
                lim.max_header_bytes and self._head_bytes > lim.max_header_bytes  # else no need to add up
                and sum(len(n) + len(v) for n, v in headers) > lim.max_header_bytes):
            self._refusal = headers_too_large(lim)
            raise _Refused  # stops the parser before the app runs; data_received answers
        super().on_headers_complete()

    # --- answers -----------------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:  # uvicorn's own 400 path, in our error shape
        self._send_error(malformed())

    def _send_error(self, err: errors.ApiError) -> None:
        """Answer before (or instead of) the app, and close: the rest of the stream cannot be trusted."""
        self._refusal = err
        self._disarm_deadline()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request went wrong while one is answered: no interleaving
            return
        status, headers, body = errors.render(err)
        content = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers, (b"connection", b"close")]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", body])
        self.transport.write(b"".join(content))
        # A close with unread input makes the kernel reset the connection, and a reset can destroy our
        # answer before the client reads it (a header flood is still sending). So: half-close, drop what
        # still arrives (data_received ignores it), close for good after LINGER seconds (nginx: lingering_close).
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._deadline = self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is refused."""
