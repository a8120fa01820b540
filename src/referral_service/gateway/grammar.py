"""PostgREST's query-string grammar: filters, logic trees, select, order.

Pure functions from strings to typed values; any malformed input raises a PGRST100 :class:`ApiError`
(never another exception), which the hypothesis tests check.

>>> parse_filter_value("id", "not.in.(1,2)")
Filter(field=Field(name='id', path=()), negated=True, op='in', quant=None, lang=None, value=('1', '2'))
>>> parse_order("name.desc.nullslast")[0]
OrderTerm(field=Field(name='name', path=()), direction='desc', nulls='last')
"""

from __future__ import annotations

from dataclasses import dataclass

from . import errors

OPERATORS = frozenset({
    "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is", "isdistinct",
    "fts", "plfts", "phfts", "wfts", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj",
})
QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
FTS = frozenset({"fts", "plfts", "phfts", "wfts"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
MAX_DEPTH = 32
_OP_EXPECT = 'expecting "not" or operator (eq, gt, ...)'


@dataclass(frozen=True, slots=True)
class JsonStep:
    arrow: str  # "->" or "->>"
    key: str


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    path: tuple[JsonStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    negated: bool
    op: str
    quant: str | None
    lang: str | None
    value: str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and" | "or"
    negated: bool
    children: tuple[Filter | Logic, ...]


Condition = Filter | Logic


@dataclass(frozen=True, slots=True)
class SelectField:
    field: Field
    alias: str | None
    cast: str | None


@dataclass(frozen=True, slots=True)
class SelectEmbed:
    name: str
    alias: str | None
    hint: str | None
    inner: bool
    items: tuple[SelectItem, ...]


@dataclass(frozen=True, slots=True)
class Star:
    pass


SelectItem = SelectField | SelectEmbed | Star


@dataclass(frozen=True, slots=True)
class OrderTerm:
    field: Field
    direction: str | None  # "asc" | "desc" | None
    nulls: str | None  # "first" | "last" | None


# --- fields --------------------------------------------------------------------------------------------


def parse_field(text: str, what: str, whole: str) -> Field:
    """``name[->key|->>key]*``."""
    parts = text.split("->")
    name = parts[0]
    if not name or any(c in name for c in '(),"') or name != name.strip():
        raise errors.parse_error(what, whole, 1, f'unexpected "{text[:1] or " "}" expecting field name')
    steps = []
    for part in parts[1:]:
        arrow = "->"
        if part.startswith(">"):
            arrow, part = "->>", part[1:]
        if not part or any(c in part for c in '(),"'):
            raise errors.parse_error(what, whole, len(text), 'unexpected end of input expecting json key')
        steps.append(JsonStep(arrow, part))
    return Field(name, tuple(steps))


# --- filters -------------------------------------------------------------------------------------------


def _unquote(value: str) -> str:
    """A double-quoted item: backslash escapes the next character."""
    out, i = [], 1
    while i < len(value) - 1:
        c = value[i]
        if c == "\\" and i + 1 < len(value) - 1:
            i += 1
            c = value[i]
        out.append(c)
        i += 1
    return "".join(out)


def split_top(text: str, what: str, whole: str) -> list[str]:
    """Split on commas that are outside quotes, braces and parentheses."""
    items, depth, start, i, quoted = [], 0, 0, 0, False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
            if depth < 0:
                raise errors.parse_error(what, whole, i + 1, f'unexpected "{c}"')
        elif c == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
        i += 1
    if quoted or depth:
        raise errors.parse_error(what, whole, len(text) + 1, "unexpected end of input")
    items.append(text[start:])
    return items


def _in_items(raw: str, whole: str) -> tuple[str, ...]:
    if not (raw.startswith("(") and raw.endswith(")")):
        raise errors.parse_error("filter", whole, 1, 'unexpected end of input expecting "("')
    inner = raw[1:-1]
    if inner == "":
        return ()
    out = []
    for item in split_top(inner, "filter", whole):
        item = item.strip()
        out.append(_unquote(item) if len(item) >= 2 and item[0] == item[-1] == '"' else item)
    return tuple(out)


def parse_op_value(field: Field, text: str, whole: str | None = None) -> Filter:
    """``[not.]op[(modifier)].value`` for a known field."""
    whole = text if whole is None else whole
    negated = False
    rest = text
    if rest.startswith("not."):
        negated, rest = True, rest[4:]
    op_part, dot, value = rest.partition(".")
    mod = None
    if "(" in op_part and op_part.endswith(")"):
        op_part, _, mod = op_part[:-1].partition("(")
    if op_part not in OPERATORS or not dot:
        shown = rest[:1] or " "
        detail = f'unexpected "{shown}" {_OP_EXPECT}' if rest else f"unexpected end of input {_OP_EXPECT}"
        raise errors.parse_error("filter", whole, 1 + (4 if negated else 0), detail)
    quant = lang = None
    if mod is not None:
        if op_part in FTS and mod and all(c.isalnum() or c == "_" for c in mod):
            lang = mod
        elif op_part in QUANTIFIABLE and mod in ("any", "all"):
            quant = mod
        else:
            raise errors.parse_error("filter", whole, len(op_part) + 2, f'unexpected "{mod[:1] or ")"}"')
    if op_part == "in":
        return Filter(field, negated, "in", None, None, _in_items(value, whole))
    if op_part == "is":
        low = value.lower()
        if low not in IS_VALUES:
            raise errors.parse_error("filter", whole, len(text) - len(value) + 1,
                                     f'unexpected "{value[:1] or " "}" expecting null, not_null, true, false '
                                     "or unknown")
        return Filter(field, negated, "is", None, None, low)
    if quant and not (value.startswith("{") and value.endswith("}")):
        raise errors.parse_error("filter", whole, len(text) - len(value) + 1, 'unexpected end of input '
                                 'expecting "{"')
    return Filter(field, negated, op_part, quant, lang, value)


def parse_filter_value(key: str, value: str) -> Filter:
    return parse_op_value(parse_field(key, "filter", value), value)


def _logic_item(text: str, whole: str, depth: int) -> Condition:
    negated = False
    body = text
    if body.startswith("not.") and (body[4:].startswith("or(") or body[4:].startswith("and(")):
        negated, body = True, body[4:]
    for op in ("or", "and"):
        if body.startswith(op + "(") and body.endswith(")"):
            return parse_logic(op, negated, body[len(op):], whole, depth + 1)
    # field.[not.]op.value — the field ends at the first dot (JSON keys hold no dots here)
    field_text, dot, rest = body.partition(".")
    if not dot:
        raise errors.parse_error("logic tree", whole, 1, f'unexpected end of input {_OP_EXPECT}')
    field = parse_field(field_text, "logic tree", whole)
    flt = parse_op_value(field, rest, whole)
    if isinstance(flt.value, str) and len(flt.value) >= 2 and flt.value[0] == flt.value[-1] == '"':
        flt = Filter(flt.field, flt.negated, flt.op, flt.quant, flt.lang, _unquote(flt.value))
    return flt


def parse_logic(op: str, negated: bool, value: str, whole: str | None = None, depth: int = 0) -> Logic:
    """``(cond,cond,...)`` where cond is a filter or a nested ``[not.]or(...)``/``and(...)``."""
    whole = value if whole is None else whole
    if depth > MAX_DEPTH:
        raise errors.parse_error("logic tree", whole, 1, "nesting too deep")
    if not (value.startswith("(") and value.endswith(")")) or len(value) < 3:
        raise errors.parse_error("logic tree", whole, 1, 'unexpected end of input expecting "("')
    items = split_top(value[1:-1], "logic tree", whole)
    return Logic(op, negated, tuple(_logic_item(i, whole, depth) for i in items))


# --- select --------------------------------------------------------------------------------------------


def parse_select(text: str, depth: int = 0, whole: str | None = None) -> tuple[SelectItem, ...]:
    whole = text if whole is None else whole
    if depth > MAX_DEPTH:
        raise errors.parse_error("select parameter", whole, 1, "nesting too deep")
    items: list[SelectItem] = []
    for raw in split_top(text, "select parameter", whole):
        item = raw.strip()
        if item == "*":
            items.append(Star())
            continue
        if not item:
            raise errors.parse_error("select parameter", whole, 1, "unexpected end of input expecting field name")
        alias = None
        head = item.split("(", 1)[0]
        colon = head.find(":")
        if colon != -1 and head[colon:colon + 2] != "::":
            alias, item = item[:colon].strip(), item[colon + 1:].strip()
            if not alias or any(c in alias for c in '(),"'):
                raise errors.parse_error("select parameter", whole, 1, "unexpected alias")
        if "(" in item:
            items.append(_parse_embed(item, alias, depth, whole))
            continue
        cast = None
        if "::" in item:
            item, _, cast = item.partition("::")
            if not cast or not all(c.isalnum() or c in "_ " for c in cast):
                raise errors.parse_error("select parameter", whole, 1, f'unexpected "{cast[:1] or " "}" '
                                         "expecting cast type")
        if item.startswith("..."):
            raise errors.not_implemented("spread embeds are not supported")
        items.append(SelectField(parse_field(item, "select parameter", whole), alias, cast.strip() or None
                                 if cast else None))
    return tuple(items)


def _parse_embed(item: str, alias: str | None, depth: int, whole: str) -> SelectEmbed:
    head, _, rest = item.partition("(")
    if not rest.endswith(")"):
        raise errors.parse_error("select parameter", whole, len(whole) + 1, 'unexpected end of input expecting ")"')
    if head.startswith("..."):
        raise errors.not_implemented("spread embeds are not supported")
    name, *hints = head.split("!")
    hint, inner = None, False
    for h in hints:
        if h == "inner":
            inner = True
        elif h == "left":
            inner = False
        elif h and hint is None:
            hint = h
        else:
            raise errors.parse_error("select parameter", whole, 1, f'unexpected "!{h}"')
    if not name or any(c in name for c in '(),":'):
        raise errors.parse_error("select parameter", whole, 1, "unexpected embed name")
    inner_text = rest[:-1]
    items = parse_select(inner_text, depth + 1, whole) if inner_text.strip() else (Star(),)
    return SelectEmbed(name, alias, hint, inner, items)


# --- order ---------------------------------------------------------------------------------------------


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    terms = []
    for raw in split_top(text, "order", text):
        parts = raw.split(".")
        direction = nulls = None
        while len(parts) > 1 and parts[-1] in ("asc", "desc", "nullsfirst", "nullslast"):
            word = parts.pop()
            if word.startswith("nulls"):
                if nulls or direction:
                    raise errors.parse_error("order", text, len(raw), f'unexpected "{word}"')
                nulls = word[5:]
            else:
                if direction:
                    raise errors.parse_error("order", text, len(raw), f'unexpected "{word}"')
                direction = word
        if len(parts) != 1 or "(" in parts[0]:
            col = len(parts[0]) + 2
            bad = parts[1] if len(parts) > 1 else parts[0]
            raise errors.parse_error("order", text, col, f'unexpected "{bad[:1] or " "}" expecting "asc", "desc", '
                                     '"nullsfirst" or "nullslast"')
        terms.append(OrderTerm(parse_field(parts[0], "order", text), direction, nulls))
    return tuple(terms)


def parse_nonneg_int(value: str, what: str) -> int:
    if value.isdigit() and len(value) < 19:
        return int(value)
    if value.startswith("-") and value[1:].isdigit() and what == "limit":
        raise errors.invalid_range("Limit should be greater than or equal to zero.")
    raise errors.parse_error(what, value, 1, f'unexpected "{value[:1] or " "}" expecting digit')
