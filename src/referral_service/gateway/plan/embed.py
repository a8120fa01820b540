"""Choosing the relationship an embed of ``select`` names (PostgREST's ``findRel``, reference §2.2–2.9).

``target(...)`` matches a relationship by its target's name, by its FK constraint name or by the origin's
column of a single-column FK (the last two never for a view target); ``target!hint(...)`` needs the target's
name and a hint naming the constraint, either column of a single-column FK or a many-to-many junction.
Self-references: the table name gives the children, the FK column the parent, ``table!fkcol`` the children.
A computed relationship is named by its function only.
"""

from __future__ import annotations

from .. import errors
from ..grammar import SelectEmbed
from ..schema import WIRE_CARDINALITY, Relationship, SchemaCache, Table


def _single(cols: tuple[str, ...], name: str) -> bool:
    return len(cols) == 1 and cols[0] == name


def _matches(r: Relationship, target: str, hint: str | None) -> bool:
    if r.cardinality == "computed":
        return r.function == target
    fk = r.cardinality in ("o2m", "m2o", "o2o")
    if r.is_self:
        if hint is None:
            return (r.foreign_table == target and r.cardinality == "o2m") or \
                (r.cardinality == "m2o" and _single(r.columns, target))
        return r.foreign_table == target and r.cardinality == "o2m" and _single(r.foreign_columns, hint)
    if hint is None:
        return r.foreign_table == target or (fk and not r.foreign_is_view and (
            r.name == target or _single(r.columns, target)))
    if r.foreign_table != target:
        return False
    if fk:
        return r.name == hint or _single(r.columns, hint) or _single(r.foreign_columns, hint)
    return r.junction is not None and r.junction.table == hint


def pick_rel(cache: SchemaCache, schema: str, parent: Table, emb: SelectEmbed) -> Relationship:
    candidates = cache.rels_of(schema, parent.name)
    rels = [r for r in candidates if _matches(r, emb.name, emb.hint)]
    if not rels:
        err = errors.no_relationship(parent.name, emb.name, schema, emb.hint)
        err.hint = _fuzzy_hint(cache, schema, parent.name, emb.name, candidates)
        raise err
    if len(rels) > 1:
        raise errors.ambiguous_relationship(parent.name, emb.name, [_describe(r) for r in rels],
                                            [f"{r.foreign_table}!{_hint_name(r)}" for r in rels])
    return rels[0]


def target_table(cache: SchemaCache, rel: Relationship) -> Table:
    return cache.tables[(rel.schema, rel.foreign_table)]


def _hint_name(r: Relationship) -> str:
    return r.junction.table if r.junction else r.name


def _describe(r: Relationship) -> dict[str, str]:
    if r.cardinality == "computed":
        return {}  # what PostgREST serializes for one (never ambiguous in practice)
    out = {"cardinality": WIRE_CARDINALITY[r.cardinality], "embedding": f"{r.table} with {r.foreign_table}"}
    j = r.junction
    if j is not None:
        out["relationship"] = (f"{j.table} using {j.constraint1}({', '.join(j.columns1)}) and "
                               f"{j.constraint2}({', '.join(j.columns2)})")
    else:
        out["relationship"] = (f"{r.name} using {r.table}({', '.join(r.columns)}) and "
                               f"{r.foreign_table}({', '.join(r.foreign_columns)})")
    return out


def _fuzzy_hint(cache: SchemaCache, schema: str, origin: str, target: str,
                candidates: list[Relationship]) -> str | None:
    """PostgREST's suggestion: the closest target among the origin's relationships (none when that is the
    target itself, so a wrong hint gets none); an origin without relationships gets the closest origin that
    has some."""
    if candidates:
        # the targets' table names, computed relationships' too (PostgREST's relForeignTable), never a function's
        best = closest(target, sorted({r.foreign_table for r in candidates}))
        return f"Perhaps you meant '{best}' instead of '{target}'." if best and best != target else None
    origins = sorted({o for s, o in cache.rels_from if s == schema and o != origin})
    best = closest(origin, origins)
    return f"Perhaps you meant '{best}' instead of '{origin}'." if best else None


def closest(word: str, options: list[str], minimum: float = 0.33) -> str | None:
    """The option with the best Levenshtein similarity (1 - distance / longer length), as the fuzzyset
    library PostgREST uses re-scores its matches: the word lower-cased against each option's normalised form
    (lower case, only letters, digits, spaces and commas: ``get_user`` is ``getuser``, ``(id)`` is ``id``), so
    ``function_returning_set_of_rows`` is not close to ``active_users`` (0.30) as PostgREST answers; an equal
    option (ignoring case) wins; None below ``minimum``."""
    norm = word.lower()
    for opt in options:
        if opt.lower() == norm:
            return opt
    best, score = None, minimum
    for opt in options:
        other = _normalised(opt)
        longer = max(len(norm), len(other))
        s = 1 - _levenshtein(norm, other) / longer if longer else 0.0
        if s >= score and (best is None or s > score):
            best, score = opt, s
    return best


def _normalised(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace() or c == ",")


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
