"""Streaming replicas of the local cluster: PostgreSQL's own replication, nothing home-made.

`add` makes a hot standby with `pg_basebackup -R` (it writes `standby.signal` and `primary_conninfo`),
streaming from its own physical replication slot (the primary keeps the WAL a stopped replica still needs),
logging in as `replicator`, a role that may only replicate, with its own password kept 0600 in the data
folder. Each replica is a `localdb.Cluster` named `<primary>-replica-<n>` beside the primary, on its own port.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from . import localdb
from .errors import OperatorError

ROLE = "replicator"
PASSWORD_FILE = "replication.password"
_NAME = re.compile(r"^(?P<primary>.+)-replica-(?P<n>[0-9]+)$")
STREAM_WAIT = 30.0  # seconds `add` waits for the new replica to stream


@dataclass(frozen=True)
class Replica:
    cluster: localdb.Cluster
    slot: str

    @property
    def name(self) -> str:
        return self.cluster.name


@dataclass(frozen=True)
class ReplicaStatus:
    name: str
    port: int
    running: bool
    streaming: bool  # the primary sees its WAL receiver connected
    lag_bytes: int | None  # WAL the replica has not replayed yet
    lag_seconds: float | None  # 0 when caught up, else age of the last replayed transaction


def _slot(primary: localdb.Cluster, n: int) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"{primary.name}_replica_{n}".lower())


def _replica(primary: localdb.Cluster, n: int, port: int | None = None) -> Replica:
    """Replica number `n`: its stored port when it exists, else `port` or a free one (never REFERRAL_DB_PORT,
    which names the primary's)."""
    name = f"{primary.name}-replica-{n}"
    probe = localdb.Cluster(name=name, port=port or 1, data_dir=primary.data_dir)
    port = probe.stored_port() or port or localdb.free_port()
    return Replica(localdb.Cluster(name=name, port=port, data_dir=primary.data_dir), _slot(primary, n))


def replicas(primary: localdb.Cluster) -> list[Replica]:
    """The replicas of `primary` found beside it, by number."""
    found = []
    if primary.data_dir.is_dir():
        for entry in primary.data_dir.iterdir():
            m = _NAME.match(entry.name)
            if m and m["primary"] == primary.name:
                found.append(int(m["n"]))
    return [_replica(primary, n) for n in sorted(found)]


def find(primary: localdb.Cluster, name: str) -> Replica:
    for r in replicas(primary):
        if name in (r.name, r.name.rsplit("-", 1)[1], str(r.cluster.port)):
            return r
    raise OperatorError(f"no replica {name!r} of this cluster (see `referral-service db replica list`)")


def replication_password(data_dir: Path) -> str:
    """The replication role's password: made once, kept 0600 beside the other local secrets."""
    path = data_dir / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def ensure_role(primary: localdb.Cluster) -> str:
    """The `replicator` role (LOGIN REPLICATION, nothing else) with the stored password; returns it.

    The password goes to the server as a SCRAM verifier computed here (libpq's PQencryptPasswordConn), so the
    clear text is never in a statement that logs or pg_stat_statements could keep."""
    password = replication_password(primary.data_dir)
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        verifier = conn.pgconn.encrypt_password(password.encode(), ROLE.encode(), b"scram-sha-256").decode()
        exists = conn.execute("select 1 from pg_roles where rolname = %s", [ROLE]).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(sql.SQL("{} role {} with login replication password {}").format(
            sql.SQL(verb), sql.Identifier(ROLE), sql.Literal(verifier)))
    return password


def add(primary: localdb.Cluster, port: int | None = None, log: Callable[[str], None] = lambda _m: None) -> Replica:
    """Make and start a new streaming replica of the running `primary`."""
    if not primary.running():
        raise OperatorError("the local cluster is not running: start it first (referral-service db start)")
    taken = {int(_NAME.match(r.name)["n"]) for r in replicas(primary)}  # type: ignore[index]
    n = next(i for i in range(1, len(taken) + 2) if i not in taken)
    replica = _replica(primary, n, port)
    if localdb.port_in_use(replica.cluster.port):  # type: ignore[arg-type]
        raise OperatorError(f"port {replica.cluster.port} on 127.0.0.1 is taken; choose another with --port N")
    password = ensure_role(primary)
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_replication_slots where slot_name = %s", [replica.slot]).fetchone():
            conn.execute("select pg_create_physical_replication_slot(%s)", [replica.slot])
    try:
        _base_backup(primary, replica, password, log)
        replica.cluster.start(log=log)
        _wait_streaming(primary, replica)
    except BaseException:
        remove(primary, replica)
        raise
    return replica


def _base_backup(primary: localdb.Cluster, replica: Replica, password: str, log: Callable[[str], None]) -> None:
    place = localdb.service_folder(replica.cluster.home)
    log(f"copying the primary into {replica.cluster.home} (pg_basebackup, slot {replica.slot})")
    env = dict(os.environ, PGPASSWORD=password)  # libpq reads it; never on a command line
    done = localdb.run_as_service_user([
        localdb.pg_bin("pg_basebackup"), "-D", str(place / "data"), "-h", "127.0.0.1", "-p", str(primary.port),
        "-U", ROLE, "--no-password", "-R", "-S", replica.slot, "-X", "stream", "-c", "fast",
    ], env=env)
    if done.returncode != 0:
        raise OperatorError(f"pg_basebackup failed: {' | '.join(done.stderr.strip().splitlines()[-2:])}")
    # hot_standby_feedback: long reads on the replica are not cancelled by the primary's vacuum (the price:
    # the primary keeps dead rows those reads still see a little longer)
    with (place / "data" / "postgresql.auto.conf").open("a") as f:
        f.write("hot_standby_feedback = on\n")
    (place / "run").mkdir(exist_ok=True)
    localdb.give_to_service_user(place / "run")
    for leftover in ("postmaster.pid", "postmaster.opts", "cluster.json"):
        (place / "data" / leftover).unlink(missing_ok=True)


def _wait_streaming(primary: localdb.Cluster, replica: Replica) -> None:
    deadline = time.monotonic() + STREAM_WAIT
    while not _streaming(primary).get(replica.slot):
        if time.monotonic() > deadline:
            raise OperatorError(f"the replica started but does not stream after {STREAM_WAIT:.0f} s; "
                                f"see {replica.cluster.home / 'server.log'}")
        time.sleep(0.2)


def _streaming(primary: localdb.Cluster) -> dict[str, bool]:
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        rows = conn.execute("select slot_name, active from pg_replication_slots where slot_type = 'physical'")
        return dict(rows.fetchall())


def remove(primary: localdb.Cluster, replica: Replica) -> None:
    """Stop the replica, delete its files, drop its slot (else the primary keeps WAL for it forever)."""
    replica.cluster.destroy()
    if primary.running():
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                         "where slot_name = %s and not active", [replica.slot])


def status(primary: localdb.Cluster) -> list[ReplicaStatus]:
    """Each replica's state and lag, as the replica reports it against the primary's current WAL position."""
    found = replicas(primary)
    if not found:
        return []
    streaming = _streaming(primary) if primary.running() else {}
    primary_lsn = None
    if primary.running():
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            primary_lsn = conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
    out = []
    for r in found:
        running = r.cluster.running()
        lag_bytes = lag_seconds = None
        if running and primary_lsn is not None:
            with psycopg.connect(r.cluster.url("postgres"), autocommit=True, connect_timeout=3) as conn:
                lag_bytes, lag_seconds = conn.execute(LAG_SQL, [primary_lsn, primary_lsn]).fetchone()  # type: ignore[misc]
        out.append(ReplicaStatus(r.name, r.cluster.port, running, bool(streaming.get(r.slot)),  # type: ignore[arg-type]
                                 None if lag_bytes is None else int(lag_bytes), lag_seconds))
    return out


# On the replica, given the primary's current position: bytes not yet replayed, and seconds behind (0 when
# caught up: an idle primary writes nothing, and the last replayed commit's age would grow without meaning).
LAG_SQL = """
select greatest(0, pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()))::bigint,
       case when pg_last_wal_replay_lsn() >= %s::pg_lsn then 0.0
            else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0)::float8 end
"""
