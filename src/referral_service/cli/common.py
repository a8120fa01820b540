"""What every command shares: output, one-line errors, the database it works on."""

from __future__ import annotations

import os
import sys
from functools import wraps

import psycopg
from rich.console import Console

from .. import config, localdb
from ..errors import OperatorError

out = Console()
err = Console(stderr=True)


def say(message: str) -> None:
    out.print(message, highlight=False, soft_wrap=True)


def operator_errors(fn):
    """Turn an OperatorError into one red line and exit status 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OperatorError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0]
            err.print(f"[red]error:[/red] cannot reach the database: {first}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


def using_local_cluster() -> bool:
    return not os.environ.get("DATABASE_URL")


def ensure_database() -> str:
    """Start the local cluster when it is the target; return the admin URL either way."""
    if using_local_cluster():
        localdb.Cluster().start()
    return localdb.admin_url()


def authenticator_url(port: int | None = None) -> str:
    """The gateway's login: the authenticator on the same server and database as the admin URL."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(localdb.admin_url())
    parts.update(user="authenticator", password=config.load_secrets().authenticator_password)
    if port is not None:
        parts.update(host="127.0.0.1", port=str(port))
    return make_conninfo(**parts)
