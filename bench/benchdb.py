"""The bench's own throwaway PostgreSQL cluster: one seeded database per data size, plus helper tables."""

from __future__ import annotations

import os
import secrets as pysecrets
from dataclasses import dataclass
from urllib.parse import quote

import psycopg

from referral_service import config, localdb, provision
from referral_service.migrate import migrate
from referral_service.seed import seed
from referral_service.seed_vocab import SEARCH_TERMS

SIZES = {"small": (10_000, 100_000), "medium": (100_000, 1_000_000), "large": (1_000_000, 10_000_000)}
ADMIN_EMAIL = "bench-admin@example.com"
USER_EMAIL = "bench-user@example.com"
SAMPLE_IDS = 10_000

# Lookup tables for pgbench's random picks (\set r random(1, n) → row rn); readable by the API roles.
HELPERS = """
create schema bench;
create table bench.ids as
    select row_number() over ()::int as rn, id from (select id from api.offers where status = 'active'
                                                      order by random() limit {n}) s;
alter table bench.ids add primary key (rn);
create table bench.terms (rn int primary key, term text not null);
grant usage on schema bench to anonymous, app_user, app_admin;
grant select on all tables in schema bench to anonymous, app_user, app_admin;
"""


@dataclass
class Fixture:
    """What the workloads need from one seeded database."""

    name: str
    admin_url: str
    gateway_url: str  # as the authenticator, like the gateway
    ids: list[str]
    admin_token: str
    user_email: str
    user_password: str
    seed_stats: dict


class BenchCluster:
    def __init__(self, keep: bool = False) -> None:
        # one cluster per run: two runs at once (several engineers on one machine) must not destroy each other's
        self.cluster = localdb.Cluster(name=f"bench-pg-{os.getpid()}", port=localdb.free_port())
        self.keep = keep
        self.secrets = config.load_secrets()

    def start(self) -> None:
        self.cluster.destroy()
        self.cluster.start()
        with psycopg.connect(self.cluster.url("postgres"), autocommit=True) as conn:
            # a scratch cluster: fewer forced checkpoints while seeding; statements logged only while capturing
            conn.execute("alter system set max_wal_size = '8GB'")
            conn.execute("alter system set log_line_prefix = '@@%p@@ '")
            conn.execute("select pg_reload_conf()")

    def stop(self) -> None:
        if self.keep:
            return
        self.cluster.destroy()

    def set_logging(self, on: bool) -> None:
        with psycopg.connect(self.cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"alter system set log_statement = '{'all' if on else 'none'}'")
            conn.execute("select pg_reload_conf()")

    @property
    def log_path(self):
        return self.cluster.place / "server.log"

    def prepare(self, size: str, progress=None) -> Fixture:
        """A fresh app database for this size: migrated, provisioned, seeded, with users and helper tables."""
        offers, events = SIZES[size]
        dbname = config.DB_NAME  # pg_cron only installs into the database it is configured for
        with psycopg.connect(self.cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
            conn.execute(f'create database "{dbname}"')
        url = self.cluster.url(dbname)
        migrate(url, log=lambda _line: None)
        provision.provision(url, self.secrets)
        stats = seed(url, offers, events, progress)
        password = "Bench-" + pysecrets.token_urlsafe(12)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select internal.create_user(%s, %s, 'admin')", [ADMIN_EMAIL, password])
            conn.execute("select internal.create_user(%s, %s, 'user')", [USER_EMAIL, password])
            # W4 is one client sending views of random offers: with the per-visitor window and event rate on,
            # it would measure the dedup lookup, not the insert (docs/api.md, "what is counted")
            conn.execute("select internal.set_event_limits(null, null)")
            # bench/capture.py reads the gateway's bind parameters from this throwaway cluster's log; migration
            # 013 keeps them out of real logs (they carry passwords), so bring them back here only
            conn.execute(f'alter role authenticator in database "{dbname}" set log_parameter_max_length = -1')
            token = conn.execute("select api.login(%s, %s)", [ADMIN_EMAIL, password]).fetchone()[0]["access_token"]
            conn.execute(HELPERS.format(n=SAMPLE_IDS))
            with conn.cursor().copy("copy bench.terms (rn, term) from stdin") as copy:
                for i, term in enumerate(SEARCH_TERMS, 1):
                    copy.write_row((i, term))
            conn.execute("vacuum analyze bench.ids")
            ids = [r[0] for r in conn.execute("select id::text from bench.ids order by rn").fetchall()]
        auth_url = (f"postgresql://authenticator:{quote(self.secrets.authenticator_password, safe='')}"
                    f"@127.0.0.1:{self.cluster.port}/{dbname}")
        return Fixture(dbname, url, auth_url, ids, token, USER_EMAIL, password, stats)
