"""Generate realistic offers and offer_view events for benchmarks and demos.

Rows are generated inside PostgreSQL (`insert ... select ... from generate_series`) in chunks, spread
over two connections so both cores work: measured faster here than COPY fed by Python (see bench/README.md).
A large load of offers (at least as many as are there, and at least BULK_OFFERS) drops the secondary indexes of
api.offers first and builds them again after it, from the definitions PostgreSQL itself prints
(`pg_get_indexdef`, read before dropping; their comments too), so they never drift from the migrations: the
RUM search indexes (migrations 028, 033) cost ~0.4 ms per row kept up row by row (416 s for 1M offers) and
about 10 s each to build at 1M offers. Indexes that back a constraint or enforce uniqueness stay. Meant for
bench and demo databases: during the load, searches and listings of that database scan the table. Events skip the per-row foreign-key trigger
(`session_replication_role = replica`, as pg_restore does) because every offer_id comes from api.offers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import psycopg.sql

from .errors import OperatorError
from .seed_vocab import PRODUCTS, REQUIREMENTS, TYPES

Progress = Callable[[int, int], None]
OFFER_CHUNK = 20_000
EVENT_CHUNK = 200_000
CONNECTIONS = 2
BULK_OFFERS = 50_000  # from this many new offers (and at least as many as exist), indexes are built after loading

# The indexes of api.offers that neither back a constraint nor enforce uniqueness: safe to drop for a load,
# whose rows they do not check. Their definition (name, method, operator classes, predicate, storage options).
SECONDARY_INDEXES_SQL = """
select c.relname, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class')
from pg_index i
join pg_class c on c.oid = i.indexrelid
where i.indrelid = 'api.offers'::regclass and not i.indisunique and not i.indisprimary and not i.indisexclusion
  and not exists (select from pg_constraint k where k.conindid = i.indexrelid)
order by c.relname
"""

# $1 chunk size, $2..$4 product institution/type/name, $5 requirement templates (6 per type, in TYPES order)
OFFERS_SQL = """
insert into api.offers (title, institution, offer_type, requirements, status, metadata, created_at, updated_at)
select
    r.inst || ' ' || r.product || ' ' || case r.kind
        when 'credit_card' then to_char(r.points, 'FM999,999') || (case when r.u < 0.5 then ' points' else ' miles' end)
        when 'brokerage' then case when r.u < 0.3 then 'up to ' || r.stocks || ' free stocks'
                                   else '$' || r.bonus || ' cash bonus' end
        else '$' || r.bonus || ' bonus' end,
    r.inst, r.kind,
    concat_ws(' ', format(($5::text[])[r.t * 6 + r.q1], r.threshold, r.days),
              case when r.q2 <> r.q1 then format(($5::text[])[r.t * 6 + r.q2], r.threshold, r.days) end,
              case when r.q3 > 0 and r.q3 not in (r.q1, r.q2) then format(($5::text[])[r.t * 6 + r.q3], r.threshold, r.days) end),
    r.status,
    jsonb_build_object('bonus_tiers', case
            when r.tiers = 1 then jsonb_build_array(jsonb_build_object('min', r.threshold, 'bonus', r.bonus))
            else jsonb_build_array(jsonb_build_object('min', r.threshold, 'bonus', r.bonus / 2),
                                   jsonb_build_object('min', r.threshold * 5, 'bonus', r.bonus)) end,
        'days_to_qualify', r.days, 'referral', r.u > 0.75)
        || case when r.kind = 'credit_card' then jsonb_build_object('annual_fee', r.fee) else '{}' end
        || case when r.e < 0.12 then '{}'  -- no known expiry
                else jsonb_build_object('expiry_date', to_char(current_date + case
                    when r.status in ('expired', 'archived') or r.e < 0.15 then -1 - r.offset_days / 2
                    else 1 + r.offset_days end, 'YYYY-MM-DD')) end,
    r.created, r.created + (now() - r.created) * r.u
from (
    select p.inst, p.kind, p.product, array_position($6::text[], p.kind) - 1 as t, s.*,
           case when s.st < 0.80 then 'active' when s.st < 0.88 then 'expired'
                when s.st < 0.95 then 'draft' else 'archived' end as status,
           (array[25, 50, 100, 150, 200, 250, 300, 400, 500, 750, 1000])[s.bi] as bonus,
           (case p.kind when 'bank' then array[500, 1000, 1500, 2500, 5000, 15000, 25000]
                        when 'credit_card' then array[500, 1000, 3000, 4000, 5000, 6000, 15000]
                        else array[100, 500, 1000, 5000, 25000, 100000, 250000] end)[s.ti] as threshold
    from (
        select 1 + floor(random() * cardinality($2::text[]))::int as pi,
               1 + floor(random() * 6)::int as q1, 1 + floor(random() * 6)::int as q2,
               case when random() < 0.4 then 1 + floor(random() * 6)::int else 0 end as q3,
               1 + floor(random() * 11)::int as bi, 1 + floor(random() * 7)::int as ti,
               (array[30, 45, 60, 90, 120])[1 + floor(random() * 5)::int] as days,
               10000 * (2 + floor(random() * 14)::int) as points, 2 + floor(random() * 19)::int as stocks,
               (array[0, 95, 250, 550, 695])[1 + floor(random() * 5)::int] as fee,
               1 + floor(random() * 2)::int as tiers, floor(random() * 365)::int as offset_days,
               random() as u, random() as e, random() as st,
               now() - random() * interval '730 days' as created
        from generate_series(1, $1::int)
    ) s
    cross join lateral (select ($2::text[])[s.pi] as inst, ($3::text[])[s.pi] as kind,
                               ($4::text[])[s.pi] as product) p
) r
"""

EVENT_DAYS = 60  # events are spread over this many days before now

# The monthly partitions of the events' time range (migration 031), so no row lands in the default partition.
PARTITIONS_SQL = f"""
select internal.create_event_partitions(now() - interval '{EVENT_DAYS} days', interval '{EVENT_DAYS} days')
"""
PARTITIONED_SQL = "select to_regprocedure('internal.create_event_partitions(timestamptz, interval)') is not null"

# $1 chunk size, $2 number of offers; popularity skewed towards low row numbers (power law)
EVENTS_SQL = f"""
insert into api.analytics_events (event_type, event_data, offer_id, created_at)
select 'offer_view', jsonb_build_object('offer_id', i.id), i.id, now() - random() * interval '{EVENT_DAYS} days'
from (select 1 + floor(power(random(), 3) * $2::int)::int as rn from generate_series(1, $1::int)) r
join seed_offer_ids i using (rn)
"""


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _run_chunks(url: str, chunks: list[int], setup: list[str], sql: str, params: Callable[[int], list],
                tick: Callable[[int], None]) -> None:
    """Run `sql` once per chunk over CONNECTIONS connections, one transaction per chunk."""
    lock = threading.Lock()
    pending = list(chunks)

    def worker() -> None:
        with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.RawCursor) as conn:
            for stmt in setup:
                conn.execute(stmt)
            while True:
                with lock:
                    if not pending:
                        return
                    n = pending.pop()
                conn.execute(sql, params(n), prepare=True)
                tick(n)

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for f in [pool.submit(worker) for _ in range(CONNECTIONS)]:
            f.result()


def _drop_secondary_indexes(url: str) -> list[tuple[str, str, str | None]]:
    """Drop the secondary indexes of api.offers in one transaction; return (name, definition, comment) of each."""
    with psycopg.connect(url) as conn:
        indexes = conn.execute(SECONDARY_INDEXES_SQL).fetchall()
        for name, _, _ in indexes:
            conn.execute(psycopg.sql.SQL("drop index api.{}").format(psycopg.sql.Identifier(name)))
    return indexes


def _build_indexes(url: str, indexes: list[tuple[str, str, str | None]]) -> None:
    """Create the indexes again (only those missing: safe to call after a partial failure), largest first,
    over CONNECTIONS connections: each build is one sort or one pass over the table."""
    pending = sorted(indexes, key=lambda ix: " using btree " in ix[1])  # RUM/GIN (the slow ones) first
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("set maintenance_work_mem = '256MB'")
            conn.execute("set max_parallel_maintenance_workers = 0")  # the other connection has the other core
            while True:
                with lock:
                    if not pending:
                        return
                    name, definition, comment = pending.pop(0)
                qualified = psycopg.sql.Identifier("api", name)
                if conn.execute("select to_regclass(%s) is null", [qualified.as_string(conn)]).fetchone()[0]:
                    conn.execute(definition)
                    if comment is not None:
                        conn.execute(psycopg.sql.SQL("comment on index {} is {}").format(
                            qualified, psycopg.sql.Literal(comment)))

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for f in [pool.submit(worker) for _ in range(CONNECTIONS)]:
            f.result()


def seed(url: str, offers: int, events: int, progress: Progress | None = None) -> dict:
    """Add `offers` offers and `events` offer_view events (over all offers) to the database at `url`
    (a superuser URL). Returns counts and timings in seconds."""
    total = offers + events
    done = 0
    lock = threading.Lock()

    def tick(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if progress:
                progress(done, total)

    session = ["set synchronous_commit = off", "set gin_pending_list_limit = '64MB'"]
    started = time.monotonic()
    insts, kinds, names = (list(col) for col in zip(*PRODUCTS))
    templates = [t for kind in TYPES for t in REQUIREMENTS[kind]]
    with psycopg.connect(url, autocommit=True) as conn:
        existing = conn.execute("select count(*) from api.offers").fetchone()[0]
    dropped = _drop_secondary_indexes(url) if offers >= max(BULK_OFFERS, existing) else []
    try:
        _run_chunks(url, _chunks(offers, OFFER_CHUNK), session, OFFERS_SQL,
                    lambda n: [n, insts, kinds, names, templates, TYPES], tick)
    finally:
        _build_indexes(url, dropped)  # also when loading failed: the database keeps its migrated indexes
    offers_s = time.monotonic() - started

    with psycopg.connect(url, autocommit=True) as conn:
        available = conn.execute("select count(*) from api.offers").fetchone()[0]
    if events and not available:
        raise OperatorError("no offers to attach events to: add offers first (--offers N)")
    if events:
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute(PARTITIONED_SQL).fetchone()[0]:  # a database before migration 031 has none
                conn.execute(PARTITIONS_SQL)
    ids = ["create temp table seed_offer_ids as select row_number() over ()::int as rn, id from api.offers",
           "alter table seed_offer_ids add primary key (rn)", "analyze seed_offer_ids",
           "set session_replication_role = replica"]
    _run_chunks(url, _chunks(events, EVENT_CHUNK), session + ids, EVENTS_SQL, lambda n: [n, available], tick)
    events_s = time.monotonic() - started - offers_s

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum (analyze) api.offers")
        conn.execute("vacuum (analyze) api.analytics_events")
    return {"offers": offers, "events": events, "offers_seconds": round(offers_s, 2),
            "events_seconds": round(events_s, 2), "total_seconds": round(time.monotonic() - started, 2)}
