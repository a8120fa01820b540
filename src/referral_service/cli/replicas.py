"""`referral-service db replica ...`: streaming replicas of the local cluster (see replicas.py)."""

from __future__ import annotations

import click

from .. import config, localdb, replicas
from ..errors import OperatorError
from .common import operator_errors, say, using_local_cluster
from .db import db


def _primary() -> localdb.Cluster:
    if not using_local_cluster():
        raise OperatorError("db replica works on the local cluster only; unset DATABASE_URL "
                            "(for other servers see docs/scaling.md)")
    return localdb.Cluster()


@db.group("replica")
def replica() -> None:
    """Streaming read replicas of the local cluster (pg_basebackup -R, a replication slot each)."""


@replica.command("add")
@click.option("--port", type=click.IntRange(1, 65535), help="The replica's port (default: a free one).")
@operator_errors
def replica_add(port: int | None) -> None:
    """Make a hot standby of the running local cluster and start it."""
    primary = _primary()
    made = replicas.add(primary, port, log=say)
    say(f"replica {made.name} streaming on 127.0.0.1:{made.cluster.port} (slot {made.slot})")
    say(f"read from it: REFERRAL_DB_READ_URIS=postgresql://authenticator:<password>@127.0.0.1:{made.cluster.port}"
        f"/{config.DB_NAME} (the authenticator's password: as in PGRST_DB_URI)")


@replica.command("list")
@operator_errors
def replica_list() -> None:
    """Each replica: port, state, lag behind the primary."""
    found = replicas.status(_primary())
    if not found:
        say("no replicas (add one: referral-service db replica add)")
        return
    for line in describe(found):
        say(line)


def describe(found: list[replicas.ReplicaStatus]) -> list[str]:
    lines = []
    for r in found:
        if not r.running:
            lines.append(f"{r.name}  127.0.0.1:{r.port}  stopped")
            continue
        lag = "lag unknown" if r.lag_seconds is None else f"lag {r.lag_seconds:.3f} s, {r.lag_bytes} bytes"
        lines.append(f"{r.name}  127.0.0.1:{r.port}  {'streaming' if r.streaming else 'not streaming'}  {lag}")
    return lines


@replica.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_errors
def replica_remove(name: str, yes: bool) -> None:
    """Stop a replica (by name, number or port), delete its files and drop its replication slot."""
    primary = _primary()
    found = replicas.find(primary, name)
    if not yes:
        click.confirm(f"Stop {found.name} and delete its files?", abort=True)
    replicas.remove(primary, found)
    say(f"replica {found.name} removed (slot {found.slot} dropped)")
