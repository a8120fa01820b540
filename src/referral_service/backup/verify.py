"""Verification: restore a dump into a scratch database and compare every table with what was dumped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from .common import BackupError, connect, dbname, with_db
from .retention import manifest_path

# Tables whose rows are secrets the running service gets from its environment: their definitions are dumped,
# their data never is (pg_dump --exclude-table-data). A restore re-installs them (provision.provision).
SECRET_TABLES = ("internal.secrets",)
# Schemas whose contents belong to PostgreSQL or to pg_cron, not to us (see restore.cron_entries for cron).
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "cron")


@dataclass(frozen=True)
class TableState:
    rows: int
    md5: str


@dataclass
class VerifyReport:
    dump: Path
    scratch_db: str
    compared_against: str  # "manifest" (snapshot of the dump itself) or "source" (the live database)
    tables: dict[str, TableState]
    differences: list[str]
    skipped: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


class VerifyError(BackupError):
    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        lines = "\n".join(f"  - {d}" for d in report.differences)
        super().__init__(f"backup verification FAILED for {report.dump.name} "
                         f"({len(report.differences)} difference(s) against the {report.compared_against}):\n"
                         f"{lines}")


# Ordinary tables (partitions included) that hold our data. Extension members are skipped because the
# extension recreates them; materialized views are skipped because pg_restore re-runs REFRESH, so a view
# that was stale at dump time would differ without anything being lost.
_TABLES = """
select n.nspname, c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and c.relpersistence <> 't'
  and n.nspname <> all(%s) and n.nspname not like 'pg\\_%%'
  and not exists (select from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1, 2
"""


def table_states(conn: psycopg.Connection, exclude: tuple[str, ...] = SECRET_TABLES) -> dict[str, TableState]:
    """Row count and an order-independent checksum of every application table, keyed "schema.table".

    Hashing each row's text and aggregating the sorted hashes keeps the aggregate at 32 bytes a row,
    so large tables do not hit the 1 GB limit of a text value. Tables in `exclude` (the secrets, whose
    data is never dumped) are left out: not even a checksum of a secret goes into a manifest.
    """
    states: dict[str, TableState] = {}
    for schema, table in conn.execute(_TABLES, (list(SYSTEM_SCHEMAS),)).fetchall():
        if f"{schema}.{table}" in exclude:
            continue
        query = sql.SQL(
            "select count(*), md5(coalesce(string_agg(h, '' order by h), '')) "
            'from (select md5(t::text) collate "C" as h from {}.{} t) s'
        ).format(sql.Identifier(schema), sql.Identifier(table))
        rows, digest = conn.execute(query).fetchone()
        states[f"{schema}.{table}"] = TableState(rows=rows, md5=digest)
    return states


def secret_rows(conn: psycopg.Connection, tables: tuple[str, ...] = SECRET_TABLES) -> dict[str, int]:
    """Row counts of the secret tables that exist in this database (after a restore: must all be 0)."""
    counts = {}
    for name in tables:
        if conn.execute("select to_regclass(%s)", [name]).fetchone()[0] is not None:
            schema, table = name.split(".", 1)
            query = sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            counts[name] = conn.execute(query).fetchone()[0]
    return counts


def compare_states(expected: dict[str, TableState], actual: dict[str, TableState],
                   label: str = "source") -> list[str]:
    """Human-readable differences; empty means identical. `label` names where `expected` came from."""
    differences = []
    for name in sorted(expected.keys() - actual.keys()):
        differences.append(f"{name}: missing after restore")
    for name in sorted(actual.keys() - expected.keys()):
        differences.append(f"{name}: not in the {label}")
    for name in sorted(expected.keys() & actual.keys()):
        want, got = expected[name], actual[name]
        if want.rows != got.rows:
            differences.append(f"{name}: {want.rows} rows in the {label}, {got.rows} restored")
        elif want.md5 != got.md5:
            differences.append(f"{name}: same row count ({want.rows}) but contents differ (checksum)")
    return differences


def verify_dump(dump_path: str | Path, source_dsn: str, scratch_dbname: str | None = None,
                *, use_manifest: bool = True) -> VerifyReport:
    """Restore the dump into a scratch database on the source's server and compare every table.

    Compares with the manifest written at backup time (same snapshot as the dump) when there is one and
    `use_manifest`; otherwise with the live source, which only makes sense while nothing writes to it.
    Always drops the scratch database. Raises BackupError listing every difference.
    """
    from .restore import drop_database, restore  # restore sits above verification in the package

    dump = Path(dump_path)
    manifest = manifest_path(dump)
    if use_manifest and manifest.is_file():
        tables = json.loads(manifest.read_text())["tables"]
        # (manifests written before SECRET_TABLES existed list them: their data is no longer compared)
        expected = {name: TableState(t["rows"], t["md5"]) for name, t in tables.items() if name not in SECRET_TABLES}
        against = "manifest"
    else:
        with connect(source_dsn) as conn:
            expected = table_states(conn)
        against = "source"

    scratch = scratch_dbname or f"{dbname(source_dsn)}_verify_{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    scratch_dsn = with_db(source_dsn, scratch)
    result = restore(dump, scratch_dsn, create=True)  # refuses an existing database: never drop one we did not make
    try:
        with connect(scratch_dsn) as conn:
            actual = table_states(conn)
            leaked = {name: rows for name, rows in secret_rows(conn).items() if rows}
    finally:
        drop_database(source_dsn, scratch)

    differences = compare_states(expected, actual, against)
    differences += [f"{name}: {rows} row(s) of secrets in the dump (its data must be left out)"
                    for name, rows in sorted(leaked.items())]
    report = VerifyReport(dump=dump, scratch_db=scratch, compared_against=against, tables=expected,
                          differences=differences, skipped=result.skipped)
    if not report.ok:
        raise VerifyError(report)
    return report
