"""The data-modifying statement of a mutation plan (the ``pgrst_source`` CTE)."""

from __future__ import annotations

from ..plan import Mutation, Plan
from .fragments import Params, condition, ident, literal_name


def _mutation_source(plan: Plan, p: Params) -> str:
    m = plan.mutation
    assert m is not None
    t = plan.node.table
    target = f"{ident(t.schema)}.{ident(t.name)} AS {ident(t.name)}"
    a = ident(t.name)
    returning = f"RETURNING {a}.*"
    if m.on_conflict is not None:
        returning += f", ({a}.xmax::text = '0') AS pgrst_inserted"
    if not m.columns and m.kind != "delete":
        if m.kind == "update" or m.body_is_array:  # `{}` patch or `[]` insert: touch nothing
            flag = ", false AS pgrst_inserted" if m.on_conflict is not None else ""
            return f"SELECT {a}.*{flag} FROM {target} WHERE false"
        return f"INSERT INTO {target} DEFAULT VALUES {returning}"
    where = " AND ".join(condition(c, t.name, t, p) for c in m.conditions)
    if m.kind == "delete":
        return f"DELETE FROM {target}{' WHERE ' + where if where else ''} {returning}"
    names = ", ".join(ident(c.name) for c in m.columns)
    defs = ", ".join(f"{ident(c.name)} {c.type}" for c in m.columns)
    payload = p.add(m.body)
    rows = f"{payload}::json" if m.body_is_array else f"json_build_array({payload}::json)"
    if m.missing_default and any(c.default is not None for c in m.columns):
        rows = _with_defaults(m, payload)
    if m.kind == "update":
        sets = ", ".join(f"{ident(c.name)} = pgrst_body.{ident(c.name)}" for c in m.columns)
        body = f"(SELECT * FROM json_to_recordset({rows}) AS _({defs}) LIMIT 1) AS pgrst_body"
        return f"UPDATE {target} SET {sets} FROM {body}{' WHERE ' + where if where else ''} {returning}"
    sql = (f"INSERT INTO {target} ({names}) SELECT {', '.join('pgrst_body.' + ident(c.name) for c in m.columns)} "
           f"FROM json_to_recordset({rows}) AS pgrst_body({defs})")
    if m.on_conflict is not None:
        sql += f" ON CONFLICT ({', '.join(ident(c) for c in m.on_conflict)})"
        updates = [c for c in m.columns if m.kind == "put" or c.name not in ()]
        if m.resolution == "ignore-duplicates" or not updates:
            sql += " DO NOTHING"
        else:
            sql += " DO UPDATE SET " + ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in updates)
    return f"{sql} {returning}"


def _with_defaults(m: Mutation, payload: str) -> str:
    """``missing=default``: merge each element over an object of the columns' DEFAULT expressions.

    The default expressions are catalog text (``pg_get_expr``), never request data.
    """
    cols = [c for c in m.columns if c.default is not None]
    pairs = ", ".join(f"{literal_name(c.name)}, {c.default}" for c in cols)
    src = f"{payload}::jsonb" if m.body_is_array else f"jsonb_build_array({payload}::jsonb)"
    return f"(SELECT json_agg(jsonb_build_object({pairs}) || pgrst_e) FROM jsonb_array_elements({src}) pgrst_e)"
