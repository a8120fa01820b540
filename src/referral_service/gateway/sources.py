"""Where each setting comes from: PostgREST's config file, then the environment, then the command line.

* ``PGRST_CONFIG`` (or ``serve --config FILE``) names a config file in PostgREST's syntax
  (:mod:`.config_file`); ``PGRST_*`` variables override its keys (``db-uri`` ↔ ``PGRST_DB_URI``).
* ``PGRST_<NAME>_FILE=/path`` reads ``PGRST_<NAME>`` from that file (Docker and Kubernetes secrets), as do
  values written ``@/path`` for the settings that carry secrets (:data:`AT_FILE`, PostgREST's ``db-uri``
  and ``jwt-secret`` plus our ``db-listen-uri``). One trailing newline is dropped, as PostgREST does.
* A variable or key nobody knows is reported with the nearest known name; one PostgREST knows but this
  gateway does not implement is reported as not supported. Unknown variables are warnings (environments
  carry foreign ``PGRST_*`` names, e.g. Kubernetes service links for a service called ``pgrst``); unknown
  keys of the file are errors (the file is written for us: a typo there is always a mistake).

The names known are derived from the settings model, so a field added to it is known at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AliasChoices

from . import config_file
from .config_file import ALIASES, APP_SETTINGS, POSTGREST_KEYS, ConfigFileError, Value

PREFIX = "PGRST_"
CONFIG_VARIABLE = "PGRST_CONFIG"
SERVICE_KEY_PREFIX = "referral-"  # the service's own keys in a shared file (REFERRAL_* in the environment)
AT_FILE = frozenset({"db_uri", "db_listen_uri", "jwt_secret"})


class SourceError(Exception):
    """One line for the operator."""


@dataclass
class Gathered:
    values: dict[str, Any] = field(default_factory=dict)  # field name → raw value
    origin: dict[str, str] = field(default_factory=dict)  # field name → where it came from, for messages
    notes: list[str] = field(default_factory=list)  # warnings to log at start
    file: dict[str, Value] = field(default_factory=dict)  # the whole config file, for the service's keys


def env_name(key: str) -> str:
    return PREFIX + key.upper().replace("-", "_").replace(".", "_")


def known_names(model: type) -> dict[str, str]:
    """Config-file key → field name, for every field of ``model`` and its ``PGRST_*`` aliases."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        keys[name.replace("_", "-")] = name
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else []
        for choice in choices:
            if isinstance(choice, str) and choice.startswith(PREFIX):
                keys[choice[len(PREFIX):].lower().replace("_", "-")] = name
    for old, new in ALIASES.items():
        if new in keys and old not in keys:
            keys[old] = keys[new]
    return keys


def gather(model: type, env: Mapping[str, str], path: str | Path | None) -> Gathered:
    keys = known_names(model)
    by_env = {env_name(k): f for k, f in keys.items()}
    out = Gathered()
    path = path or env.get(CONFIG_VARIABLE) or None
    if path:
        try:
            out.file = config_file.read(path, env)
        except ConfigFileError as exc:
            raise SourceError(str(exc)) from None
        for key, value in sorted(out.file.items(), key=lambda kv: _canonical(kv[0], keys)):
            if key in keys:
                _put(out, keys[key], _text(value), f"{key} in {path}")
            elif not key.startswith(SERVICE_KEY_PREFIX):
                problem, postgrest = _problem(key, key, list(keys), str)
                if not postgrest:
                    raise SourceError(f"config file {path}: {problem}")
                out.notes.append(f"config file {path}: {problem}")
    file_vars = {}
    for name, value in sorted(env.items(), key=lambda kv: _canonical(kv[0], by_env)):
        if not name.startswith(PREFIX) or name == CONFIG_VARIABLE:
            continue
        if name in by_env:
            _put(out, by_env[name], value, name)
        elif name.endswith("_FILE") and name[:-5] in by_env:
            file_vars[name] = value
        else:
            problem, postgrest = _problem(name, name[len(PREFIX):].lower().replace("_", "-"), list(keys), env_name)
            out.notes.append(problem if postgrest else problem + "; ignored")
    for name, target in file_vars.items():
        base = name[:-5]
        value = _read_file(target, name)
        # equal values are fine: the server hands a file's value on to its worker processes in `base`
        if base in env and env[base] != value:
            raise SourceError(f"{name}: set either {base} or {name}, not both")
        _put(out, by_env[base], value, name)
    for name in AT_FILE & out.values.keys():
        value = out.values[name]
        if isinstance(value, str) and value.startswith("@"):
            out.values[name] = _read_file(value[1:], out.origin[name])
    return out


def _canonical(name: str, known: Mapping[str, str]) -> bool:
    """False for an alias (``db-schema``), so that the canonical name, sorted after it, wins."""
    field_name = known.get(name)
    return field_name is not None and name in (field_name.replace("_", "-"), env_name(field_name))


def _text(value: Value) -> str:
    """A file value as the environment would carry it (the model parses both the same way)."""
    return config_file.render(value) if isinstance(value, bool) else str(value)


def _put(out: Gathered, name: str, value: Any, origin: str) -> None:
    out.values[name] = value
    out.origin[name] = origin


def _problem(shown: str, key: str, known_keys: list[str], spell: Any) -> tuple[str, bool]:
    """(message, whether PostgREST knows the name) for a name that is no setting of the model."""
    if key in POSTGREST_KEYS or key in ALIASES or key.startswith((APP_SETTINGS, "app-settings-")):
        return f"{shown} is a PostgREST setting this gateway does not support; ignored", True
    close = config_file.nearest(key, known_keys)
    return f"{shown} is not a known setting" + (f" (did you mean {spell(close)}?)" if close else ""), False


def _read_file(path: str, origin: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise SourceError(f"{origin}: cannot read {path}: {reason}") from None
    return text.removesuffix("\n")


def service_keys(model: type, env_prefix: str, env: Mapping[str, str]) -> dict[str, str]:
    """The ``referral-*`` keys of the config file (``PGRST_CONFIG``) for the service's own settings model
    (``referral-rate-limit`` ↔ ``REFERRAL_RATE_LIMIT``), minus those the environment sets (it wins)."""
    path = env.get(CONFIG_VARIABLE)
    if not path:
        return {}
    try:
        found = config_file.read(path, env)
    except ConfigFileError as exc:
        raise SourceError(str(exc)) from None
    known = {SERVICE_KEY_PREFIX + name.replace("_", "-"): name for name in model.model_fields}
    values = {}
    for key, value in found.items():
        if not key.startswith(SERVICE_KEY_PREFIX):
            continue
        if key not in known:
            close = config_file.nearest(key, list(known))
            raise SourceError(f"config file {path}: {key} is not a known setting"
                              + (f" (did you mean {close}?)" if close else ""))
        if env_prefix + known[key].upper() not in env:
            values[known[key]] = _text(value)
    return values
