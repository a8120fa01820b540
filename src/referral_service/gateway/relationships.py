"""Relationship detection for the schema cache, the way PostgREST does it (reference §1).

From the catalog's foreign keys: many-to-one (one-to-one when the FK columns are exactly a primary key or
unique constraint of the referencing table), their inverses (one-to-many, or one-to-one seen from the
referenced side), the same through views that expose the key columns, many-to-many through a junction (two
distinct many-to-one FKs whose columns lie inside the junction's primary key), and computed relationships
(functions of one relation's row returning rows of another), which override the FK relationships to the
table they are named after. Functions of a row returning anything else become computed fields.
"""

from __future__ import annotations

from typing import Any

from .schema import Junction, Relationship, SchemaCache

Rel = tuple[str, str]  # (schema, name)
Keys = dict[Rel, list[tuple[str, frozenset[str], tuple[str, ...]]]]


def build(cache: SchemaCache, fks: list, keys: Keys, deps: dict[Rel, set[Rel]], computed: list[Any]) -> None:
    _view_keys(cache, keys, deps)
    direct: list[Relationship] = []
    seen: set[tuple] = set()
    for name, src, cols, dst, fcols in fks:
        unique = any(fs == frozenset(cols) for _, fs, _ in keys.get(src, ()))
        for a in _stand_ins(cache, deps, src, cols):
            for b in _stand_ins(cache, deps, dst, fcols):
                if a[0] != b[0] or (a, b, name, cols) in seen:
                    continue
                seen.add((a, b, name, cols))
                direct.append(_fk_rel(cache, name, a, cols, b, fcols, unique))
    rels = list(direct)
    rels.extend(_inverse(r) for r in direct)
    rels.extend(_many_to_many(cache, direct))
    rels = _computed(cache, rels, computed)
    cache.relationships = rels
    by_origin: dict[Rel, list[Relationship]] = {}
    for r in rels:
        by_origin.setdefault((r.schema, r.table), []).append(r)
    cache.rels_from = {k: sorted(v, key=Relationship.sort_key) for k, v in by_origin.items()}


def _is_view(cache: SchemaCache, rel: Rel) -> bool:
    t = cache.tables.get(rel)
    return t is not None and t.kind in ("v", "m")


def _stand_ins(cache: SchemaCache, deps: dict[Rel, set[Rel]], rel: Rel, cols: tuple[str, ...]) -> list[Rel]:
    """The exposed relation itself, and exposed views reading it that expose ``cols`` under the same names
    (a cheap form of PostgREST's view-column lineage, enough for ``create view v as select ... from t``)."""
    out = [rel] if rel in cache.tables else []
    for view in sorted(deps.get(rel, ())):
        if all(c in cache.tables[view].columns for c in cols):
            out.append(view)
    return out


def _view_keys(cache: SchemaCache, keys: Keys, deps: dict[Rel, set[Rel]]) -> None:
    """A view that exposes its base table's primary key gets it (so a view can be a junction)."""
    for base, views in deps.items():
        pk = next((cols for kind, _, cols in keys.get(base, ()) if kind == "p"), None)
        for view in views:
            t = cache.tables.get(view)
            if pk and t is not None and not t.pk and all(c in t.columns for c in pk):
                t.pk = tuple(sorted(pk))
                keys.setdefault(view, []).append(("p", frozenset(pk), pk))


def _fk_rel(cache: SchemaCache, name: str, a: Rel, cols: tuple[str, ...], b: Rel, fcols: tuple[str, ...],
            unique: bool) -> Relationship:
    return Relationship(name, a[1], cols, b[1], fcols, True, a[0], "o2o" if unique else "m2o", a == b,
                        table_is_view=_is_view(cache, a), foreign_is_view=_is_view(cache, b))


def _inverse(r: Relationship) -> Relationship:
    return Relationship(r.name, r.foreign_table, r.foreign_columns, r.table, r.columns, r.cardinality == "o2o",
                        r.schema, "o2o" if r.cardinality == "o2o" else "o2m", r.is_self,
                        table_is_view=r.foreign_is_view, foreign_is_view=r.table_is_view,
                        parent=r.cardinality == "o2o")


def _many_to_many(cache: SchemaCache, direct: list[Relationship]) -> list[Relationship]:
    out = []
    by_junction: dict[Rel, list[Relationship]] = {}
    for r in direct:
        if r.cardinality == "m2o":
            by_junction.setdefault((r.schema, r.table), []).append(r)
    for jrel, fks in by_junction.items():
        pk = set(cache.tables[jrel].pk)
        if not pk:
            continue
        for c1 in fks:
            for c2 in fks:
                if c1 is c2 or (c1.name, c1.columns) == (c2.name, c2.columns):
                    continue
                if not set(c1.columns) | set(c2.columns) <= pk:
                    continue
                j = Junction(jrel[1], c1.name, c1.columns, c2.name, c2.columns)
                out.append(Relationship(
                    j.table, c1.foreign_table, c1.foreign_columns, c2.foreign_table, c2.foreign_columns, False,
                    jrel[0], "m2m", c1.foreign_table == c2.foreign_table, j,
                    table_is_view=c1.foreign_is_view, foreign_is_view=c2.foreign_is_view))
    return out


def _computed(cache: SchemaCache, rels: list[Relationship], rows: list[Any]) -> list[Relationship]:
    """Computed relationships replace the FK relationships from their origin to the table they are
    named after; computed fields are recorded on their table."""
    overrides: set[tuple[str, str, str]] = set()
    extra = []
    for fschema, fname, aschema, aname, rschema, rname, retset, rows_est in rows:
        origin = cache.tables.get((aschema, aname))
        if origin is None or aschema != fschema:
            continue  # looked up by the request schema: function and origin live together
        if rname is None:
            if not retset:
                origin.computed.setdefault(fname, fschema)
            continue
        if (rschema, rname) not in cache.tables or rschema != fschema:
            continue
        to_one = not retset or rows_est == 1
        extra.append(Relationship(fname, aname, (), rname, (), to_one, fschema, "computed",
                                  (aschema, aname) == (rschema, rname), function=fname,
                                  table_is_view=_is_view(cache, (aschema, aname)),
                                  foreign_is_view=_is_view(cache, (rschema, rname))))
        overrides.add((fschema, aname, fname))
    kept = [r for r in rels if (r.schema, r.table, r.foreign_table) not in overrides]
    return kept + extra
