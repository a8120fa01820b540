"""Pool exhaustion, clients that hang up mid-request, and SIGTERM, against a gateway on the `chaos` schema."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.reliability.harness import backends, wait_for
from tests.support import gateway_process as gateway


def _nap(url: str, seconds: float, timeout: float = 30) -> httpx.Response:
    return httpx.post(url + "/rpc/nap", json={"seconds": seconds}, timeout=timeout)


def _in_thread(fn, *args) -> tuple[threading.Thread, list]:
    box: list = []
    t = threading.Thread(target=lambda: box.append(_capture(fn, *args)), daemon=True)
    t.start()
    return t, box


def _capture(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc


def test_pool_exhausted_gives_504_after_the_acquisition_timeout(fault, tmp_path):
    env = fault.chaos_env(PGRST_DB_POOL="1", PGRST_DB_POOL_ACQUISITION_TIMEOUT="1")
    with gateway(env, tmp_path / "gateway.log", module="referral_service.gateway.server",
                 ready_path="/notes?limit=0") as gw:
        holder, box = _in_thread(_nap, gw.url, 4)
        time.sleep(0.5)
        # twenty clients arrive while the only connection is busy: each waits its timeout, none waits longer
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            waiting = [_in_thread(lambda: (time.monotonic(), c.get("/notes?limit=1"), time.monotonic()))
                       for _ in range(20)]
            for t, _ in waiting:
                t.join(10)
        replies = [b[0] for _, b in waiting]
        for start, r, end in replies:
            assert r.status_code == 504 and r.json()["code"] == "PGRST003", r.text
            assert 0.9 <= end - start < 2.5
        holder.join(10)
        assert box[0].status_code == 200
        # exhaustion is not an outage: the next request is served at once
        assert httpx.get(gw.url + "/notes?limit=1", timeout=5).status_code == 200


def test_client_disconnect_leaks_no_connection_or_transaction(fault, tmp_path):
    env = fault.chaos_env(PGRST_DB_POOL="3")
    with gateway(env, tmp_path / "gateway.log", module="referral_service.gateway.server",
                 ready_path="/notes?limit=0") as gw:
        threads = [_in_thread(_nap, gw.url, 1.5, 0.3)[0] for _ in range(6)]  # give up after 0.3 s
        host, port = urlsplit(gw.url).hostname, urlsplit(gw.url).port
        for _ in range(3):  # a body announced but never finished
            with socket.create_connection((host, port)) as s:
                s.sendall(b'POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                          b'Content-Length: 100\r\n\r\n{"body": "half')
        for t in threads:
            t.join(5)

        def settled() -> bool:
            states = [state for state, _ in backends(fault.chaos_url, "chaos_auth")]
            return all(s == "idle" for s in states) and len(states) <= 3 + 1  # pool + listener

        wait_for(settled, 15, lambda: f"backends: {backends(fault.chaos_url, 'chaos_auth')}")
        assert not [q for s, q in backends(fault.chaos_url, "chaos_auth") if s and "transaction" in s]
        with httpx.Client(base_url=gw.url, timeout=5) as c:
            assert c.get("/notes?body=like.half*").json() == []  # the truncated body was never written
            assert all(c.get("/notes?limit=1").status_code == 200 for _ in range(10))


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(fault, tmp_path):
    env = fault.chaos_env(PGRST_DB_POOL="4")
    with gateway(env, tmp_path / "gateway.log", module="referral_service.gateway.server",
                 ready_path="/notes?limit=0") as gw:
        inflight = [_in_thread(_nap, gw.url, 2) for _ in range(3)]
        time.sleep(0.5)
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # the listening socket is closed: new requests are refused
            httpx.get(gw.url + "/notes?limit=1", timeout=2)
        for t, _ in inflight:
            t.join(10)
        assert [b[0].status_code for _, b in inflight] == [200, 200, 200], [b[0] for _, b in inflight]
        try:
            code = gw.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("gateway did not exit within 10 s of SIGTERM")
        assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down cleanly
        log = gw.log.read_text()
        assert "Traceback" not in log, log[-2000:]
    assert not [s for s, _ in backends(fault.chaos_url, "chaos_auth")], "connections left open after exit"
