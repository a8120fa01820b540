"""`referral-service seed`: generated offers and view events, with a progress bar.

Registered in cli.py with `main.add_command(seed_command)`.
"""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn


@click.command("seed")
@click.option("--offers", type=click.IntRange(min=0), default=10_000, show_default=True, help="Offers to add.")
@click.option("--events", type=click.IntRange(min=0), default=100_000, show_default=True,
              help="offer_view events to add (over all offers in the database).")
def seed_command(offers: int, events: int) -> None:
    """Add generated offers and offer_view events (for benchmarks and demos)."""
    from . import cli
    from .seed import seed

    @cli.operator_errors
    def run() -> None:
        url = cli._ensure_database()
        columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=cli.out) as bar:
            task = bar.add_task("seeding rows", total=offers + events)
            stats = seed(url, offers, events, progress=lambda done, total: bar.update(task, completed=done))
        cli.say(f"added {stats['offers']} offers in {stats['offers_seconds']}s and "
                f"{stats['events']} events in {stats['events_seconds']}s ({stats['total_seconds']}s in all)")

    run()
