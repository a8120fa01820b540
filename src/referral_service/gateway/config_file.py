"""PostgREST's config file format, and the names PostgREST knows.

The file is PostgREST's (its ``configurator`` syntax, the part real configs use)::

    # comment
    db-uri      = "postgres://authenticator@db:5432/app"   # strings are double-quoted
    db-pool     = 10                                        # numbers and true/false are bare
    jwt-secret  = "@/run/secrets/jwt"                       # @path: the value is read from that file
    server-host = "$(HOST)"                                 # $(NAME): an environment variable; $$ is a $

``read`` returns ``{key: value}``; which keys mean something is decided by :mod:`.settings` (PostgREST's
keys) and the service (``referral-*`` keys, its own). Every problem is one :class:`ConfigFileError` line
naming the file and the line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# PostgREST v13's config keys (its `--example` and Config.hs), with their old aliases. Keys here that are
# not gateway settings are reported as "not supported" instead of "unknown".
POSTGREST_KEYS = frozenset({
    "admin-server-host", "admin-server-port", "client-error-verbosity", "db-aggregates-enabled",
    "db-anon-role", "db-channel", "db-channel-enabled", "db-config", "db-extra-search-path",
    "db-hoisted-tx-settings", "db-max-rows", "db-plan-enabled", "db-pool", "db-pool-acquisition-timeout",
    "db-pool-max-idletime", "db-pool-max-lifetime", "db-pool-automatic-recovery", "db-pre-config",
    "db-pre-request", "db-prepared-statements", "db-root-spec", "db-schemas", "db-timezone-enabled",
    "db-tx-end", "db-uri", "jwt-aud", "jwt-cache-max-lifetime", "jwt-cache-max-entries", "jwt-role-claim-key",
    "jwt-secret", "jwt-secret-is-base64", "log-level", "log-query", "openapi-mode", "openapi-security-active",
    "openapi-server-proxy-uri", "server-cors-allowed-origins", "server-host", "server-port",
    "server-trace-header", "server-timing-enabled", "server-unix-socket", "server-unix-socket-mode",
    "server-otel-enabled",
})
ALIASES = {"db-schema": "db-schemas", "max-rows": "db-max-rows", "pre-request": "db-pre-request",
           "root-spec": "db-root-spec", "role-claim-key": "jwt-role-claim-key",
           "secret-is-base64": "jwt-secret-is-base64", "db-pool-timeout": "db-pool-max-idletime"}
APP_SETTINGS = "app.settings."  # PostgREST's per-request GUCs from the config; not supported here

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_INTERPOLATION = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
Value = str | int | float | bool


class ConfigFileError(Exception):
    """A config file that cannot be read or parsed; one line, naming the file (and line)."""


def read(path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Value]:
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigFileError(f"config file {path}: {reason}") from None
    values: dict[str, Value] = {}
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parsed = _line(line, env)
        except ValueError as exc:
            raise ConfigFileError(f"config file {path}, line {number}: {exc}") from None
        if parsed is not None:
            values[parsed[0]] = parsed[1]  # a later line wins, as in PostgREST
    return values


def _line(line: str, env: Mapping[str, str]) -> tuple[str, Value] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    key, eq, rest = stripped.partition("=")
    key = key.strip()
    if not eq or not _KEY.fullmatch(key):
        raise ValueError("expected `key = value`")
    value, tail = _value(rest.strip(), env)
    if tail.strip() and not tail.strip().startswith("#"):
        raise ValueError(f"unexpected text after the value of {key}: {tail.strip()[:20]!r}")
    return key, value


def _value(text: str, env: Mapping[str, str]) -> tuple[Value, str]:
    if text.startswith('"'):
        return _string(text, env)
    word = re.match(r"[^\s#]+", text)
    token = word.group() if word else ""
    tail = text[len(token):]
    if token.lower() in ("true", "on", "yes"):
        return True, tail
    if token.lower() in ("false", "off", "no"):
        return False, tail
    if _NUMBER.fullmatch(token):
        return (float(token) if "." in token else int(token)), tail
    raise ValueError(f"a value is a double-quoted string, a number or true/false, not {token[:20]!r}")


def _string(text: str, env: Mapping[str, str]) -> tuple[str, str]:
    out, i = [], 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return _interpolate("".join(out), env), text[i + 1:]
        if c == "\\":
            nxt = text[i + 1:i + 2]
            if nxt not in _ESCAPES:
                raise ValueError(f"unknown escape \\{nxt} in a string")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    raise ValueError("string without its closing quote")


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in env:
            raise ValueError(f"$({name}) is not set in the environment")
        return env[name]

    return _INTERPOLATION.sub(sub, text)


def nearest(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def render(value: object) -> str:
    """A value in the file's syntax (for ``--dump-config``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = "" if value is None else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "$$") + '"'
