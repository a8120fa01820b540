"""Operator commands. Each one parses, calls one domain function and prints through `say`/`fail`.

One module per command group; importing them below registers their commands on `main`.
"""

from __future__ import annotations

import click

from .. import __version__


@click.group()
@click.version_option(__version__, prog_name="referral-service")
def main() -> None:
    """Churnistic referral service: local database, migrations, gateway, users, backups."""


from . import backups, db, mail, migrations, seed, serve, users  # noqa: E402,F401  (registers the commands)
from . import secrets, status  # noqa: E402,F401  (operator safety: secrets rotate, status)
from . import rollups  # noqa: E402,F401  (the dashboard's rollups: rebuild)
from . import replicas  # noqa: E402,F401  (db replica add|list|remove)
