"""Accounts from the operator's side: the session settings and common-password list `migrate` installs,
and one SQL function call per `referral-service user ...` command (the rules live in migrations/018–020)."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import psycopg

from .errors import OperatorError

SESSION_CHECK = "auth.check_session"  # the service's PGRST_DB_PRE_REQUEST (migrations/018_sessions.sql)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(name: str, raw: str) -> int:
    """`3600`, `90m`, `1h`, `30d` → seconds, or one operator line naming the variable."""
    match = _DURATION.match(raw)
    if not match:
        raise OperatorError(f"{name}: {raw!r} is not a duration (use seconds, or a number with s, m, h or d)")
    return int(match[1]) * _UNITS[match[2]]


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise OperatorError(f"{name}: {raw!r} is not true or false")


def auth_settings_from_env(env: os._Environ | dict[str, str] = os.environ) -> dict[str, Any]:
    """The auth settings the environment asks for (only those it names)."""
    changes: dict[str, Any] = {}
    if env.get("REFERRAL_ACCESS_TOKEN_TTL", "").strip():
        changes["access_token_seconds"] = seconds("REFERRAL_ACCESS_TOKEN_TTL", env["REFERRAL_ACCESS_TOKEN_TTL"])
    if env.get("REFERRAL_SESSION_INACTIVITY", "").strip():
        changes["session_inactivity_seconds"] = seconds("REFERRAL_SESSION_INACTIVITY",
                                                        env["REFERRAL_SESSION_INACTIVITY"])
    if "REFERRAL_LEGACY_TOKENS" in env:
        changes["legacy_tokens"] = _flag("REFERRAL_LEGACY_TOKENS", env["REFERRAL_LEGACY_TOKENS"])
    if "PGRST_JWT_AUD" in env:
        changes["audience"] = env["PGRST_JWT_AUD"].strip() or None
    return changes


def _common_passwords() -> list[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return FREQUENCY_LISTS["passwords"]


def configure(url: str, env: os._Environ | dict[str, str] = os.environ) -> None:
    """Install the environment's auth settings and, once, the common-password list."""
    changes = auth_settings_from_env(env)
    reset: dict[str, Any] = {}
    if env.get("REFERRAL_RESET_LINK", "").strip():
        reset["link"] = env["REFERRAL_RESET_LINK"].strip()
    with psycopg.connect(url) as conn:
        try:
            if changes:
                conn.execute("select internal.set_auth_settings(%s::jsonb)", [json.dumps(changes)])
            if reset:
                conn.execute("select internal.set_password_reset(%s::jsonb)", [json.dumps(reset)])
        except psycopg.errors.InvalidParameterValue as exc:
            raise OperatorError(exc.diag.message_primary or str(exc)) from None
        if not conn.execute("select exists (select from internal.common_passwords)").fetchone()[0]:
            conn.execute("select internal.load_common_passwords(%s)", [_common_passwords()])


def call(url: str, function: str, *args: object) -> list[tuple]:
    """Run one `internal.account_*` function as the database owner; a refusal is an operator line."""
    if not re.fullmatch(r"internal\.account_[a-z_]+", function):
        raise ValueError(function)
    placeholders = ", ".join(["%s"] * len(args))
    with psycopg.connect(url) as conn:
        try:
            cursor = conn.execute(f"select * from {function}({placeholders})", list(args))
            return cursor.fetchall()
        except psycopg.DatabaseError as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise
            diag = exc.diag
            hint = f" ({diag.message_hint})" if diag.message_hint else ""
            raise OperatorError(f"{diag.message_primary or exc}{hint}") from None
