"""PostgREST's ``jwt-role-claim-key``: where in the claims the role is (v13's JSPath-like syntax).

Elements, in any order (v13 no longer needs a leading ``.``):

* ``.key`` — key characters are letters, digits, ``_``, ``$``, ``@``;
* ``."any key"`` — double-quoted, no escapes inside;
* ``[n]`` — an array index;
* ``[?(@ OP "text")]`` — only as the last element: the first array element that is a string and matches;
  OP is ``==``, ``!=``, ``^==`` (starts with), ``==^`` (ends with) or ``*==`` (contains).

>>> RoleClaimKey.parse(".postgrest.roles[1]").find({"postgrest": {"roles": ["a", "b"]}})
'b'
>>> RoleClaimKey.parse('."https://x.example/r".k').find({"https://x.example/r": {"k": "admin"}})
'admin'
>>> RoleClaimKey.parse('.roles[?(@ ^== "aut")]').find({"roles": ["anon", "author"]})
'author'
>>> RoleClaimKey.parse(".role").find({}) is MISSING
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MISSING = object()

_KEY = re.compile(r"\.([A-Za-z0-9_$@]+)")
_QUOTED = re.compile(r'\."([^"]*)"')
_INDEX = re.compile(r"\[(\d+)\]")
_FILTER = re.compile(r'\[\?\(@\s*(==\^|\^==|\*==|==|!=)\s*"([^"]*)"\)\]$')

_MATCH = {
    "==": lambda value, text: value == text,
    "!=": lambda value, text: value != text,
    "^==": lambda value, text: value.startswith(text),
    "==^": lambda value, text: value.endswith(text),
    "*==": lambda value, text: text in value,
}


class RoleClaimKeyError(ValueError):
    pass


@dataclass(frozen=True)
class RoleClaimKey:
    steps: tuple[tuple[str, object], ...]  # ("key", name) | ("index", n) | ("filter", (op, text))

    @classmethod
    def parse(cls, text: str) -> RoleClaimKey:
        steps: list[tuple[str, object]] = []
        pos = 0
        while pos < len(text):
            if m := _QUOTED.match(text, pos):
                steps.append(("key", m.group(1)))
            elif m := _KEY.match(text, pos):
                steps.append(("key", m.group(1)))
            elif m := _INDEX.match(text, pos):
                steps.append(("index", int(m.group(1))))
            elif m := _FILTER.match(text, pos):
                steps.append(("filter", (m.group(1), m.group(2))))
            else:
                raise RoleClaimKeyError(f"failed to parse role claim key {text!r} at position {pos + 1}")
            pos = m.end()
        if not steps:
            raise RoleClaimKeyError("the role claim key is empty")
        return cls(tuple(steps))

    def find(self, claims: object) -> object:
        """The value at this path, or MISSING."""
        value = claims
        for kind, arg in self.steps:
            if kind == "key":
                if not isinstance(value, dict) or arg not in value:
                    return MISSING
                value = value[arg]
            elif kind == "index":
                if not isinstance(value, list) or arg >= len(value):
                    return MISSING
                value = value[arg]
            else:
                op, text = arg
                if not isinstance(value, list):
                    return MISSING
                value = next((v for v in value if isinstance(v, str) and _MATCH[op](v, text)), MISSING)
                if value is MISSING:
                    return MISSING
        return value

    @property
    def is_default(self) -> bool:
        return self.steps == (("key", "role"),)


DEFAULT = RoleClaimKey((("key", "role"),))
