"""Read replicas: a primary and a streaming replica cluster of these tests' own, one gateway reading from both.

Which server answered is seen through SQL: `pg_is_in_recovery()` in a test-only view and functions created
here (they replicate like everything else). Order matters: the lag and outage tests leave the replica as
they found it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from referral_service import config, localdb, provision, replicas
from referral_service.migrate import migrate
from tests.conftest import app_gateway_env
from tests.reliability.harness import wait_for
from tests.support import gateway_process, with_login

MAX_LAG = 0.5  # REFERRAL_MAX_REPLICA_LAG of the gateway under test
WAL = "x-referral-wal-lsn"

SCHEMA = """
create table api.rr_notes (id bigint generated always as identity primary key, body text not null);
alter table api.rr_notes enable row level security;
create policy rr_notes_all on api.rr_notes for all to anonymous using (true) with check (true);
grant select, insert on api.rr_notes to anonymous;
create view api.rr_where with (security_invoker) as select pg_is_in_recovery() as on_replica;
grant select on api.rr_where to anonymous;
create function api.rr_served_by() returns text language sql stable
  as $$ select case when pg_is_in_recovery() then 'replica' else 'primary' end $$;
create function api.rr_served_by_volatile() returns text language sql volatile
  as $$ select case when pg_is_in_recovery() then 'replica' else 'primary' end $$;
grant execute on function api.rr_served_by(), api.rr_served_by_volatile() to anonymous;
notify pgrst, 'reload schema';
"""


@dataclass(frozen=True)
class Pair:
    primary: localdb.Cluster
    replica: replicas.Replica
    url: str  # the gateway
    admin_url: str

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers, timeout=10)

    def where(self) -> str:
        return self.get("/rpc/rr_served_by").json()

    def replica_sql(self, statement: str) -> None:
        with psycopg.connect(self.replica.cluster.url(), autocommit=True) as conn:
            conn.execute(statement)


@pytest.fixture(scope="module")
def pair(secrets: config.Secrets, tmp_path_factory) -> Iterator[Pair]:
    primary = localdb.Cluster(name=f"test-repl-{os.getpid()}", port=localdb.free_port())
    primary.destroy()
    primary.start()
    replica = None
    try:
        app = primary.url(config.DB_NAME)
        migrate(app, log=lambda _line: None)
        provision.provision(app, secrets)
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute(SCHEMA)
        replica = replicas.add(primary)
        read_uri = with_login(replica.cluster.url(config.DB_NAME), "authenticator", secrets.authenticator_password)
        env = app_gateway_env(app, secrets, REFERRAL_DB_READ_URIS=read_uri, REFERRAL_MAX_REPLICA_LAG=str(MAX_LAG))
        log = tmp_path_factory.mktemp("replicas") / "gateway.log"
        with gateway_process(env, log) as gw:
            p = Pair(primary, replica, gw.url, gw.admin_url or "")
            wait_for(lambda: p.where() == "replica", 10, "the gateway reads from the replica")
            yield p
    finally:
        if replica is not None:
            replicas.remove(primary, replica)
        primary.destroy()


def test_reads_run_on_the_replica_writes_and_volatile_calls_on_the_primary(pair: Pair) -> None:
    assert pair.get("/rr_where").json() == [{"on_replica": True}]  # a view
    assert pair.get("/rpc/rr_served_by").json() == "replica"  # GET of a STABLE function
    assert httpx.head(pair.url + "/rr_where", timeout=10).status_code == 200
    assert pair.get("/rpc/rr_served_by_volatile").json() == "primary"  # GET of a VOLATILE function
    assert httpx.post(pair.url + "/rpc/rr_served_by", json={}, timeout=10).json() == "primary"  # POST
    written = httpx.post(pair.url + "/rr_notes", json={"body": "x"}, timeout=10)
    assert written.status_code == 201 and WAL in written.headers
    metrics = httpx.get(pair.admin_url + "/metrics", timeout=10).text
    name = f'replica="127.0.0.1:{pair.replica.cluster.port}"'
    assert f"referral_read_replica_up{{{name}}} 1.0" in metrics
    assert f"referral_read_replica_lag_seconds{{{name}}}" in metrics
    assert f'referral_db_reads_total{{target="127.0.0.1:{pair.replica.cluster.port}"}}' in metrics
    # pg_cron's scheduler does not run on a standby: no job errors there
    log = (pair.replica.cluster.home / "server.log").read_text(errors="replace")
    assert "cron" not in " ".join(line for line in log.splitlines() if "ERROR" in line)


def test_a_read_with_the_writes_position_sees_the_write(pair: Pair) -> None:
    with httpx.Client(base_url=pair.url, timeout=10) as client:
        for i in range(30):
            prefer = {"Prefer": "return=representation"}
            if i % 3 == 0:  # singular: the commit is decided after the result (execute.Pending)
                prefer["Accept"] = "application/vnd.pgrst.object+json"
            written = client.post("/rr_notes", json={"body": f"note {i}"}, headers=prefer)
            assert written.status_code == 201, written.text
            lsn = written.headers[WAL]
            row = written.json() if i % 3 == 0 else written.json()[0]
            read = client.get(f"/rr_notes?id=eq.{row['id']}", headers={WAL: lsn})
            assert read.json() == [row], (i, lsn)
    assert pair.get("/rr_notes?limit=1", **{WAL: "not a position"}).status_code == 400
    # a browser on another origin can read the position (and only then is it added to PostgREST's list)
    with httpx.Client(base_url=pair.url, timeout=10) as client:
        written = client.post("/rr_notes", json={"body": "cors"}, headers={"Origin": "http://app.example"})
        assert "X-Referral-WAL-LSN" in written.headers["access-control-expose-headers"]
        read = client.get("/rr_notes?limit=1", headers={"Origin": "http://app.example"})
        assert "X-Referral-WAL-LSN" not in read.headers["access-control-expose-headers"]


def test_a_lagging_replica_is_skipped(pair: Pair) -> None:
    pair.replica_sql("select pg_wal_replay_pause()")
    try:
        httpx.post(pair.url + "/rr_notes", json={"body": "while paused"}, timeout=10).raise_for_status()
        wait_for(lambda: pair.where() == "primary", 5, "reads move to the primary when the replica lags")
        lsn = httpx.post(pair.url + "/rr_notes", json={"body": "x"}, timeout=10).headers[WAL]
        assert pair.get("/rr_notes?body=eq.while%20paused", **{WAL: lsn}).json()[0]["body"] == "while paused"
    finally:
        pair.replica_sql("select pg_wal_replay_resume()")
    wait_for(lambda: pair.where() == "replica", 5, "reads come back to the replica once it catches up")


def test_a_stopped_replica_costs_no_request_an_error(pair: Pair) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=pair.url, timeout=10) as client:
            while not stop.is_set():
                statuses.append(client.get("/rpc/rr_served_by").status_code)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        pair.replica.cluster.stop()
        wait_for(lambda: pair.where() == "primary", 5, "reads fall back to the primary")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    metrics = httpx.get(pair.admin_url + "/metrics", timeout=10).text
    assert f'referral_read_replica_up{{replica="127.0.0.1:{pair.replica.cluster.port}"}} 0.0' in metrics
    pair.replica.cluster.start()
    wait_for(lambda: pair.where() == "replica", 10, "reads come back to the restarted replica")
