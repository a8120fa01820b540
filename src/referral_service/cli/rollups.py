"""`referral-service rollups rebuild [--from DATE]`: recount the dashboard's daily event rollups."""

from __future__ import annotations

import datetime as dt

import click
import psycopg

from ..errors import OperatorError
from . import main
from .common import ensure_database, operator_errors, say


@main.group("rollups")
def rollups() -> None:
    """The daily analytics rollups behind the dashboard (refreshed every 5 minutes by pg_cron)."""


@rollups.command("rebuild")
@click.option("--from", "from_day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First UTC day to recount (YYYY-MM-DD); default: all history.")
@operator_errors
def rebuild_command(from_day: dt.datetime | None) -> None:
    """Recount every UTC day from --from (or all days) from the raw events.

    Normal refreshes already count back-dated events; rebuild recounts a range after a bulk load made before
    the insertion watermark existed, or to check the rollups. Days whose raw events the retention job deleted
    come out lower: rebuild only days that still have their events."""
    day = from_day.date() if from_day else None
    url = ensure_database()
    with psycopg.connect(url, autocommit=True) as conn:
        oldest = _oldest_kept(conn)
        if day is not None and oldest is not None and day < oldest:
            raise OperatorError(f"raw events before {oldest} were deleted by the retention job; "
                                f"rebuilding from {day} would lower those days' counts: use --from {oldest} or later")
        if day is None and oldest is not None:
            day = oldest
        written = conn.execute("select internal.rebuild_rollups(%s, now())", [day]).fetchone()[0]
    say(f"rebuilt the rollups {'from ' + day.isoformat() if day else 'of all history'}: {written} rows written")


def _oldest_kept(conn: psycopg.Connection) -> dt.date | None:
    """With retention on, the first UTC day whose raw events are all still there; None when retention is off."""
    days = conn.execute("select (value #>> '{}')::integer from internal.settings"
                        " where name = 'analytics_retention_days'").fetchone()
    if not days or days[0] is None:
        return None
    return conn.execute("select internal.utc_day(now() - make_interval(days => %s)) + 1", [days[0]]).fetchone()[0]
