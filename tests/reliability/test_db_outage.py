"""PostgreSQL (and PgBouncer) going away under load: fast 503s with Retry-After, then recovery by itself."""

from __future__ import annotations

import collections
import os
import time

import httpx

from tests.reliability.harness import Load, start_cluster, wait_for
from tests.support import gateway_process as gateway
from tests.support import bouncer_for, with_login

OUTAGE = float(os.environ.get("FAULT_OUTAGE_SECONDS", "20"))  # long enough for psycopg_pool's backoff to bite
ACQUIRE = 3.0  # PGRST_DB_POOL_ACQUISITION_TIMEOUT in these tests
RECOVERY_BOUND = 5.0


def _ok(url: str) -> bool:
    try:
        return httpx.get(url + "/offers?limit=1", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _summary(outcomes) -> dict:
    return dict(collections.Counter((o.status, o.code) for o in outcomes))


def _check_outage(load: Load, t_down: float, t_up: float, recovered_at: float) -> None:
    during = load.between(t_down, t_up)
    after = load.between(recovered_at + 0.5)
    print(f"\noutage {t_up - t_down:.1f}s: {len(during)} requests {_summary(during)}; "
          f"slowest {max(o.elapsed for o in during):.2f}s; recovered {recovered_at - t_up:.2f}s after restart; "
          f"afterwards {_summary(after)}")
    assert during, "no request was sent during the outage"
    assert not [o for o in load.outcomes if o.status == 0 or o.status >= 500 and o.status not in (503, 504)], \
        _summary(load.outcomes)
    refused = [o for o in during if o.status == 503]
    assert refused, "no 503 during the outage"
    assert all(o.retry_after and o.code in ("PGRST000", "PGRST001", "57P01") for o in refused)
    # no hang: every request during the outage answered within the acquisition timeout (plus slack)
    assert max(o.elapsed for o in during) < ACQUIRE + 2
    assert not [o for o in during if o.status == 504], "504 during the outage: the pool waited, not the health state"
    assert recovered_at - t_up < RECOVERY_BOUND
    assert after and all(o.status == 200 for o in after), _summary(after)


def test_postgres_restart_under_load(fault, tmp_path):
    env = fault.app_env(PGRST_DB_POOL="4", PGRST_DB_POOL_ACQUISITION_TIMEOUT=str(ACQUIRE))
    with gateway(env, tmp_path / "gateway.log", ready_path="/ready") as gw:
        load = Load(gw.url, lambda c: c.get("/offers?limit=5"), threads=4)
        with load.running():
            time.sleep(1.5)
            t_down = time.monotonic()
            fault.cluster.stop()
            time.sleep(OUTAGE)
            ready = httpx.get(gw.admin_url + "/ready", timeout=10)
            assert ready.status_code == 503 and ready.headers["retry-after"]
            start_cluster(fault.cluster)
            t_up = time.monotonic()
            wait_for(lambda: _ok(gw.url), 60, "gateway did not recover")
            recovered_at = time.monotonic()
            time.sleep(2)
        _check_outage(load, t_down, t_up, recovered_at)
        assert httpx.get(gw.admin_url + "/ready", timeout=5).status_code == 200


def test_pgbouncer_restart_under_load(fault, tmp_path):
    users = {"authenticator": fault.secrets.authenticator_password}
    with bouncer_for(fault.app_url, users, tmp_path / "pgbouncer") as bouncer:
        pooled = bouncer.url("authenticator", fault.secrets.authenticator_password)
        direct = with_login(fault.app_url, "authenticator", fault.secrets.authenticator_password)
        env = fault.app_env(PGRST_DB_URI=pooled, PGRST_DB_LISTEN_URI=direct, PGRST_DB_PREPARED_STATEMENTS="false",
                            PGRST_DB_POOL="4", PGRST_DB_POOL_ACQUISITION_TIMEOUT=str(ACQUIRE))
        with gateway(env, tmp_path / "gateway.log", ready_path="/ready") as gw:
            load = Load(gw.url, lambda c: c.get("/offers?limit=5"), threads=4)
            with load.running():
                time.sleep(1.5)
                t_down = time.monotonic()
                bouncer.stop()
                time.sleep(OUTAGE)
                bouncer.start(users)
                t_up = time.monotonic()
                wait_for(lambda: _ok(gw.url), 60, "gateway did not recover")
                recovered_at = time.monotonic()
                time.sleep(2)
            _check_outage(load, t_down, t_up, recovered_at)
