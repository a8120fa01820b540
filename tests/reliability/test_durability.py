"""Nothing acknowledged is lost: kill -9 PostgreSQL under write load; a backup taken under write load restores."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import psycopg

from referral_service import backup
from tests.reliability.conftest import ADMIN
from tests.reliability.harness import kill9_postmaster, start_cluster, wait_for
from tests.support import gateway_process as gateway


class Writer:
    """Threads creating offers as admin; keeps the id of every write acknowledged with a 2xx."""

    def __init__(self, url: str, token: str, threads: int = 4) -> None:
        self.url, self.token, self.threads = url, token, threads
        self.acked: list[str] = []
        self.failed = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _loop(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Prefer": "return=representation"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=15) as c:
            while not self._stop.is_set():
                body = {"title": f"durable {uuid.uuid4()}", "institution": "Fault Bank", "offer_type": "brokerage"}
                try:
                    r = c.post("/offers?select=id", json=body)
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if 200 <= status < 300:
                        self.acked.append(r.json()[0]["id"])
                    else:
                        self.failed += 1
                if status >= 500 or status == 0:
                    time.sleep(0.05)

    def __enter__(self) -> Writer:
        self._workers = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(20)


def _login(url: str) -> str:
    r = httpx.post(url + "/rpc/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


def _ids(app_url: str) -> set[str]:
    with psycopg.connect(app_url) as conn:
        return {str(r[0]) for r in conn.execute("select id from api.offers where institution = 'Fault Bank'")}


def test_acknowledged_writes_survive_kill9(fault, tmp_path):
    env = fault.app_env(PGRST_DB_POOL="4", PGRST_DB_POOL_ACQUISITION_TIMEOUT="3")
    with gateway(env, tmp_path / "gateway.log", ready_path="/ready") as gw:
        with Writer(gw.url, _login(gw.url)) as w:
            time.sleep(3)
            before_kill = len(w.acked)
            kill9_postmaster(fault.cluster)
            time.sleep(1)
            start_cluster(fault.cluster)
            wait_for(lambda: httpx.get(gw.admin_url + "/ready", timeout=5).status_code == 200, 30)
            time.sleep(2)
        found = _ids(fault.app_url)
        missing = set(w.acked) - found
        print(f"\nkill -9: {len(w.acked)} writes acknowledged ({before_kill} before the kill), "
              f"{len(set(w.acked) & found)} found, {len(missing)} missing; statuses {w.statuses}")
        assert before_kill > 0 and len(w.acked) > before_kill, "writes did not resume after the restart"
        assert not missing
        assert not [s for s in w.statuses if s == 0 or (s >= 500 and s != 503)], w.statuses


def test_backup_under_write_load_restores_consistently(fault, tmp_path):
    env = fault.app_env(PGRST_DB_POOL="4")
    with gateway(env, tmp_path / "gateway.log", ready_path="/ready") as gw:
        with Writer(gw.url, _login(gw.url), threads=3) as w:
            time.sleep(1)
            acked_before = len(w.acked)
            dump = backup.backup(fault.app_url, tmp_path / "backups", verify=True)
            acked_after = len(w.acked)
        manifest = json.loads(dump.with_name(dump.name.removesuffix(".dump") + ".manifest.json").read_text())
    offers = manifest["tables"]["api.offers"]["rows"]
    restored = fault.app_url.rsplit("/", 1)[0] + "/restored_under_load"
    backup.restore(dump, restored)
    try:
        with psycopg.connect(restored) as conn:
            assert conn.execute("select count(*) from api.offers").fetchone()[0] == offers
            # every foreign key of the copy holds (restore creates them after the data, so check explicitly)
            orphans = conn.execute("select count(*) from api.analytics_events e "
                                   "where e.offer_id is not null and not exists "
                                   "(select from api.offers o where o.id = e.offer_id)").fetchone()[0]
            assert orphans == 0
    finally:
        with psycopg.connect(fault.app_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute("drop database if exists restored_under_load with (force)")
    print(f"\nbackup under load: {acked_before}..{acked_after} writes acknowledged during the dump; "
          f"dump has {offers} offers; verified; restored copy consistent")
    assert acked_after > acked_before, "no write happened during the backup"
