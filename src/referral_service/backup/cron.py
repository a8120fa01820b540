"""pg_cron across a restore: which archive entries belong to it, and the app's jobs for the restored database.

pg_cron keeps every job in the `cron.job` table of one database (`cron.database_name`), with a `database`
column saying where each runs; its extension can be created in that database only. So a dump of the app
database carries the jobs only when the app database is the cron database, and a restore elsewhere must leave
the extension out (CREATE EXTENSION would fail) and schedule the dumped jobs for the restored database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .common import pg_tool, run, with_db


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    command: str
    database: str
    username: str
    active: bool


def entry_id(line: str) -> int | None:
    match = re.match(r"(\d+); \d+ \d+ ", line)
    return int(match.group(1)) if match else None


def cron_entries(listing: str) -> set[int]:
    """Ids of the archive entries that belong to pg_cron, plus everything depending on them."""
    entries: dict[int, str] = {}
    depends: dict[int, set[int]] = {}
    current = None
    for line in listing.splitlines():
        entry = entry_id(line)
        if entry is not None:
            current = entry
            entries[entry] = line.split(" ", 3)[3]
            depends[entry] = set()
        elif current is not None and line.startswith(";\tdepends on:"):
            depends[current].update(int(x) for x in line.split(":", 1)[1].split())
    # Roots: the extension itself, its comment, cron-schema data (config tables, sequences) and grants on it.
    roots = {
        entry for entry, text in entries.items()
        if re.match(r"EXTENSION - pg_cron\b", text)
        or re.search(r"\b(?:EXTENSION pg_cron|SCHEMA cron)\b", text)
        or re.match(r"(?:TABLE DATA|SEQUENCE SET|SEQUENCE OWNED BY|ACL|COMMENT|DEFAULT ACL) cron ", text)
    }
    skip = set(roots)
    changed = True
    while changed:  # transitive closure: a view over cron.job cannot be created without cron.job
        changed = False
        for entry, deps in depends.items():
            if entry not in skip and deps & skip:
                skip.add(entry)
                changed = True
    return skip


def cron_database(dsn: str) -> str | None:
    """The server's cron database, or None when pg_cron is not preloaded there."""
    with psycopg.connect(with_db(dsn, "postgres"), autocommit=True) as conn:
        name = conn.execute("select current_setting('cron.database_name', true)").fetchone()[0]
        loaded = conn.execute("select exists (select from pg_available_extensions where name = 'pg_cron')"
                              ).fetchone()[0]
    return name if (name and loaded) else None


# COPY's text format: backslash escapes (see the COPY documentation, "Text Format").
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _copy_field(text: str) -> str | None:
    if text == "\\N":
        return None

    def one(match: re.Match) -> str:
        body = match.group(1)
        if body[0] in "01234567":
            return chr(int(body, 8))
        if body[0] == "x":
            return chr(int(body[1:], 16))
        return _ESCAPES.get(body, body)

    return re.sub(r"\\([0-7]{1,3}|x[0-9A-Fa-f]{1,2}|.)", one, text)


def dumped_jobs(dump: Path, env: dict[str, str]) -> list[Job]:
    """The rows of cron.job in the dump (none when the dumped database was not the cron database)."""
    text = run([pg_tool("pg_restore"), "--data-only", "--schema=cron", "--table=job", "--file=-", str(dump)],
               env, "pg_restore (cron jobs)")
    jobs: list[Job] = []
    columns: list[str] | None = None
    for line in text.splitlines():
        if columns is None:
            header = re.match(r"COPY cron\.job \((.+)\) FROM stdin;", line)
            if header:
                columns = [c.strip() for c in header.group(1).split(",")]
            continue
        if line == "\\.":
            break
        row = dict(zip(columns, (_copy_field(f) for f in line.split("\t")), strict=True))
        jobs.append(Job(name=row.get("jobname") or f"job-{row['jobid']}", schedule=row["schedule"],
                        command=row["command"], database=row["database"], username=row["username"],
                        active=row.get("active") != "f"))
    return jobs


def installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('cron.job') is not null").fetchone()[0]


def forget(dsn: str, name: str) -> None:
    """Unschedule the jobs of database `name` (dropped, or never finished), if the server has any."""
    cron_db = cron_database(dsn)
    if not cron_db or cron_db == name:
        return
    try:
        with psycopg.connect(with_db(dsn, cron_db), autocommit=True) as conn:
            if installed(conn):
                conn.execute("select cron.unschedule(jobid) from cron.job where database = %s", [name])
    except psycopg.OperationalError:  # no cron database (yet): no jobs either
        pass


def existing_jobs(conn: psycopg.Connection) -> list[Job]:
    rows = conn.execute("select coalesce(jobname, 'job-' || jobid), schedule, command, database, username, active"
                        " from cron.job order by jobid").fetchall()
    return [Job(*row) for row in rows]


def schedule(conn: psycopg.Connection, jobs: list[Job]) -> list[str]:
    """Schedule `jobs` in the cron database `conn` is connected to; returns their names.

    cron.schedule_in_database updates a job of the same name and user, so running this twice is harmless.
    """
    for job in jobs:
        conn.execute("select cron.schedule_in_database(%s, %s, %s, %s, %s, %s)",
                     [job.name, job.schedule, job.command, job.database, job.username, job.active])
    return [job.name for job in jobs]


def for_database(jobs: list[Job], source: str, target: str, rename: bool) -> list[Job]:
    """The jobs the dumped database `source` had, now running in `target`.

    With `rename` (the target is a second database beside the cron one), each name gets "@target" so the jobs
    of the original database, which share the cron database's table, are left alone.
    """
    return [Job(name=f"{job.name}@{target}" if rename else job.name, schedule=job.schedule, command=job.command,
                database=target, username=job.username, active=job.active)
            for job in jobs if job.database == source]
