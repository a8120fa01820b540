"""PostgREST's query-string grammar: filters, logic trees, select, order.

Pure functions from strings to typed values; any malformed input raises a PGRST100 :class:`ApiError`
(never another exception), which the hypothesis tests check.

>>> parse_filter_value("id", "not.in.(1,2)")
Filter(field=Field(name='id', path=()), negated=True, op='in', quant=None, lang=None, value=('1', '2'))
>>> parse_order("name.desc.nullslast")[0]
OrderTerm(field=Field(name='name', path=()), direction='desc', nulls='last', relation=None)
>>> parse_select('cnt:count(),total:amount.sum()::int')[1]
SelectField(field=Field(name='amount', path=()), alias='total', cast=None, agg='sum', agg_cast='int')
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
# Operators whose value is bound as one parameter exactly as written, whatever it is (query/fragments.py):
# a request's shape (request.py, shapes.py) leaves these values out. Not like/ilike (``*`` becomes ``%``),
# in (a list), is (a keyword in the SQL), nor a quantifier or a text-search language (more of the value).
BOUND_AS_WRITTEN = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "match", "imatch", "isdistinct", "cs", "cd",
                              "ov", "sl", "sr", "nxr", "nxl", "adj", "fts", "plfts", "phfts", "wfts"})
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


AGGREGATES = frozenset({"sum", "avg", "max", "min", "count"})


@dataclass(frozen=True, slots=True)
class SelectField:
    field: Field  # Field("*") for count()
    alias: str | None
    cast: str | None  # on the column (before an aggregate)
    agg: str | None = None  # sum | avg | max | min | count
    agg_cast: str | None = None  # on the aggregate's result


@dataclass(frozen=True, slots=True)
class SelectEmbed:
    name: str
    alias: str | None
    hint: str | None
    inner: bool
    items: tuple[SelectItem, ...]
    spread: bool = False


@dataclass(frozen=True, slots=True)
class Star:
    pass


SelectItem = SelectField | SelectEmbed | Star


@dataclass(frozen=True, slots=True)
class OrderTerm:
    field: Field
    direction: str | None  # "asc" | "desc" | None
    nulls: str | None  # "first" | "last" | None
    relation: str | None = None  # order=rel(col): the embed's name or alias


# --- fields --------------------------------------------------------------------------------------------


def _quoted(text: str, start: int, what: str, whole: str) -> tuple[str, int]:
    """A double-quoted name at ``text[start]``; backslash escapes the next character. → (name, end)."""
    out, i = [], start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise errors.parse_error(what, whole, len(text) + 1, 'unexpected end of input expecting closing quote')


def parse_name(text: str, what: str, whole: str) -> str:
    """A whole name: ``"quoted name"`` or a bare one (embed names, aliases, hints)."""
    text = text.strip()
    if text.startswith('"'):
        name, end = _quoted(text, 0, what, whole)
        if end == len(text):
            return name
    elif text and not any(c in text for c in '(),":!'):
        return text
    raise errors.parse_error(what, whole, 1, f'unexpected "{text[:1] or " "}" expecting field name')


def parse_field(text: str, what: str, whole: str) -> Field:
    """``name[->key|->>key]*``; the name and the keys may be double-quoted (``"a b"->"c d"``)."""
    if text.startswith('"'):
        name, end = _quoted(text, 0, what, whole)
        rest = text[end:]
        if rest and not rest.startswith("->"):
            raise errors.parse_error(what, whole, end + 1, f'unexpected "{rest[:1]}"')
        parts = [name, *rest.split("->")[1:]] if rest else [name]
    else:
        parts = text.split("->")
        name = parts[0]
        if not name or any(c in name for c in '(),"') or name != name.strip():
            raise errors.parse_error(what, whole, 1, f'unexpected "{text[:1] or " "}" expecting field name')
    steps = []
    for part in parts[1:]:
        arrow = "->"
        if part.startswith(">"):
            arrow, part = "->>", part[1:]
        if len(part) >= 2 and part[0] == part[-1] == '"':
            part = _quoted(part, 0, what, whole)[0]
        elif not part or any(c in part for c in '(),"'):
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
    cut = _quoted(body, 0, "logic tree", whole)[1] if body.startswith('"') else 0
    field_text, dot, rest = body[cut:].partition(".")
    field_text = body[:cut] + field_text
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


def _top_level(text: str, chars: str) -> int:
    """Index of the first of ``chars`` outside double quotes, or -1."""
    if '"' not in text:  # the common case: no quoting, let str.find do the scan
        if len(chars) == 1:
            return text.find(chars)
        found = [i for i in map(text.find, chars) if i != -1]
        return min(found) if found else -1
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in chars:
            return i
        i += 1
    return -1


def _split_alias(item: str, whole: str) -> tuple[str | None, str]:
    """``alias:rest`` (the colon before any parenthesis and not part of ``::``)."""
    paren = _top_level(item, "(")
    head = item if paren == -1 else item[:paren]
    i = 0
    while True:
        colon = _top_level(head[i:], ":")
        if colon == -1:
            return None, item
        colon += i
        if head[colon:colon + 2] == "::":
            i = colon + 2
            continue
        alias = parse_name(item[:colon], "select parameter", whole)
        return alias, item[colon + 1:].strip()


def _cast(text: str, whole: str) -> str:
    if not text or not all(c.isalnum() or c in "_ $" for c in text):
        raise errors.parse_error("select parameter", whole, 1, f'unexpected "{text[:1] or " "}" expecting cast type')
    return text.strip()


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
        if "(" not in item and ":" not in item and '"' not in item:  # a bare column (or JSON path): fast path
            items.append(SelectField(parse_field(item, "select parameter", whole), None, None))
            continue
        alias, item = _split_alias(item, whole)
        if item.startswith("..."):
            if alias is not None:  # PostgREST's parser: a spread takes no alias
                raise errors.parse_error("select parameter", whole, 1, f'unexpected "{alias[:1]}" expecting "..."')
            items.append(_parse_embed(item[3:], None, depth, whole, spread=True))
        elif _top_level(item, "(") != -1:
            items.append(_parse_aggregate(item, alias, whole) or _parse_embed(item, alias, depth, whole))
        else:
            items.append(_parse_column(item, alias, whole))
    return tuple(items)


def _parse_column(item: str, alias: str | None, whole: str) -> SelectField:
    cast = None
    cut = _top_level(item, ":")
    if cut != -1:
        if item[cut:cut + 2] != "::":
            raise errors.parse_error("select parameter", whole, 1, "unexpected alias")
        item, cast = item[:cut], _cast(item[cut + 2:], whole)
    return SelectField(parse_field(item, "select parameter", whole), alias, cast)


def _parse_aggregate(item: str, alias: str | None, whole: str) -> SelectField | None:
    """``count()``, ``field[::cast].fn()[::cast]``; None when ``item`` is an embed instead."""
    out_cast = None
    body = item
    tail = body.rfind("()")
    if tail == -1:
        return None
    if body[tail + 2:].startswith("::"):
        body, out_cast = body[:tail + 2], _cast(body[tail + 4:], whole)
    elif body[tail + 2:]:
        return None
    body = body[:-2]
    if body == "count":
        return SelectField(Field("*"), alias, None, "count", out_cast)
    dot = body.rfind(".")
    fn = body[dot + 1:]
    if dot == -1 or fn not in AGGREGATES or _top_level(body[:dot], "(") != -1:
        return None
    col = _parse_column(body[:dot], alias, whole)
    return SelectField(col.field, alias, col.cast, fn, out_cast)


def _parse_embed(item: str, alias: str | None, depth: int, whole: str, spread: bool = False) -> SelectEmbed:
    paren = _top_level(item, "(")
    head, rest = item[:paren], item[paren + 1:]
    if paren == -1 or not rest.endswith(")"):
        raise errors.parse_error("select parameter", whole, len(whole) + 1, 'unexpected end of input expecting ")"')
    parts, i = [], 0
    while True:  # name!hint!inner, each part possibly quoted
        bang = _top_level(head[i:], "!")
        parts.append(head[i:] if bang == -1 else head[i:i + bang])
        if bang == -1:
            break
        i += bang + 1
    name = parse_name(parts[0], "select parameter", whole)
    if name == "count" and not spread:
        raise errors.parse_error("select parameter", whole, 1, 'unexpected "(" expecting "()"')
    hint, join = None, None
    if len(parts) > 3:
        raise errors.parse_error("select parameter", whole, 1, 'unexpected "!"')
    for h in parts[1:]:
        if h in ("inner", "left"):
            join = join or h  # the first join type wins
        elif h:
            hint = hint or parse_name(h, "select parameter", whole)  # the first hint wins
        else:
            raise errors.parse_error("select parameter", whole, 1, 'unexpected "!"')
    inner_text = rest[:-1]
    items = parse_select(inner_text, depth + 1, whole) if inner_text.strip() else ()
    return SelectEmbed(name, alias, hint, join == "inner", items, spread)


# --- order ---------------------------------------------------------------------------------------------

_ORDER_WORDS = ("asc", "desc", "nullsfirst", "nullslast")


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    terms = []
    for raw in split_top(text, "order", text):
        head = raw
        direction = nulls = None
        while True:  # trailing .asc/.desc/.nullsfirst/.nullslast, at most one of each kind
            base, dot, word = head.rpartition(".")
            if not dot or word not in _ORDER_WORDS or not base:
                break
            if word.startswith("nulls"):
                if nulls or direction:
                    raise errors.parse_error("order", text, len(raw), f'unexpected "{word}"')
                nulls = word[5:]
            else:
                if direction:
                    raise errors.parse_error("order", text, len(raw), f'unexpected "{word}"')
                direction = word
            head = base
        relation = None
        paren = _top_level(head, "(")
        if paren != -1 and head.endswith(")"):  # order=rel(col): a to-one embed's column
            relation = parse_name(head[:paren], "order", text)
            head = head[paren + 1:-1]
        bad = _top_level(head, "()") if not head.startswith('"') else -1
        if bad != -1 or (not head.startswith('"') and "." in head.split("->")[0]):
            col = len(head) + 2
            rest = head.split(".", 1)[-1] if "." in head else head[bad:]
            raise errors.parse_error("order", text, col, f'unexpected "{rest[:1] or " "}" expecting "asc", "desc", '
                                     '"nullsfirst" or "nullslast"')
        terms.append(OrderTerm(parse_field(head, "order", text), direction, nulls, relation))
    return tuple(terms)


def parse_nonneg_int(value: str, what: str) -> int:
    if value.isdigit() and len(value) < 19:
        return int(value)
    if value.startswith("-") and value[1:].isdigit() and what == "limit":
        raise errors.invalid_range("Limit should be greater than or equal to zero.")
    raise errors.parse_error(what, value, 1, f'unexpected "{value[:1] or " "}" expecting digit')
