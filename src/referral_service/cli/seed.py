"""`referral-service seed`: generated data for benchmarks and demos."""

from __future__ import annotations

import click

from . import main
from .common import ensure_database, operator_errors, out, say


@main.command("seed")
@click.option("--offers", type=click.IntRange(min=0), default=10_000, show_default=True, help="Offers to add.")
@click.option("--events", type=click.IntRange(min=0), default=100_000, show_default=True,
              help="offer_view events to add (over all offers in the database).")
@operator_errors
def seed_command(offers: int, events: int) -> None:
    """Add generated offers and offer_view events (for benchmarks and demos)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from ..seed import seed

    url = ensure_database()
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("seeding rows", total=offers + events)
        stats = seed(url, offers, events, progress=lambda done, total: bar.update(task, completed=done))
    say(f"added {stats['offers']} offers in {stats['offers_seconds']}s and "
        f"{stats['events']} events in {stats['events_seconds']}s ({stats['total_seconds']}s in all)")
