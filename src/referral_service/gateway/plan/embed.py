"""Choosing the relationship an embed of ``select`` names."""

from __future__ import annotations

import difflib

from .. import errors
from ..grammar import SelectEmbed
from ..schema import Relationship, SchemaCache, Table


def pick_rel(cache: SchemaCache, schema: str, parent: Table, emb: SelectEmbed) -> Relationship:
    if (schema, emb.name) not in cache.tables:
        close = difflib.get_close_matches(emb.name, [n for s, n in cache.tables if s == schema], n=1)
        err = errors.no_relationship(parent.name, emb.name, schema, emb.hint)
        err.hint = f"Perhaps you meant '{close[0]}' instead of '{emb.name}'." if close else None
        raise err
    rels = cache.rels_between(schema, parent.name, emb.name)
    if emb.hint:
        rels = [r for r in rels if emb.hint in (r.name, *r.columns, *r.foreign_columns)]
    if not rels:
        raise errors.no_relationship(parent.name, emb.name, schema, emb.hint)
    if len(rels) > 1:
        details = [{
            "cardinality": "many-to-one" if r.to_one else "one-to-many",
            "embedding": f"{parent.name} with {emb.name}",
            "relationship": f"{r.name} using {parent.name if r.to_one else emb.name}"
                            f"({', '.join(r.columns if r.to_one else r.foreign_columns)}) and "
                            f"{emb.name if r.to_one else parent.name}"
                            f"({', '.join(r.foreign_columns if r.to_one else r.columns)})",
        } for r in rels]
        raise errors.ambiguous_relationship(emb.name, details, [f"{emb.name}!{r.name}" for r in rels])
    return rels[0]
