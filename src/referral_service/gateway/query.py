"""Plan → SQL text and parameters, from small named fragments.

Identifiers come from the schema cache and go through :func:`ident` (the one quoting function); every
value from the request is a bind parameter (``$n``). Values are sent as Python ``str``: psycopg binds a
``str`` with type OID 0 (*unknown*), so PostgreSQL infers the type from the column it meets, exactly as
PostgREST's unknown-typed parameters, and the SQL text does not depend on the values (prepared-statement hits).
"""

from __future__ import annotations

from .grammar import Condition, Field, Filter, Logic
from .plan import Embed, Mutation, OutCol, Plan, ReadNode
from .schema import Table

_CMP = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE",
        "ilike": "ILIKE", "match": "~", "imatch": "~*", "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<",
        "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-", "isdistinct": "IS DISTINCT FROM"}
_FTS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
        "wfts": "websearch_to_tsquery"}
_IS = {"null": "IS NULL", "not_null": "IS NOT NULL", "true": "IS TRUE", "false": "IS FALSE",
       "unknown": "IS UNKNOWN"}
RESULT_COLUMNS = "total, page_total, body, response_headers, response_status, extra"


def ident(name: str) -> str:
    """The one identifier-quoting function."""
    return '"' + name.replace('"', '""') + '"'


def literal_name(name: str) -> str:
    """A catalog name as a SQL string literal (only for names from the schema cache, never request data)."""
    return "'" + name.replace("'", "''") + "'"


class Params:
    def __init__(self) -> None:
        self.values: list[str | None] = []

    def add(self, value: str | None) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _array_literal(items: tuple[str, ...]) -> str:
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"


def column_expr(alias: str, table: Table, f: Field | OutCol, p: Params) -> str:
    name = f.name if isinstance(f, Field) else f.column
    expr = f"{ident(alias)}.{ident(name)}"
    if f.path:
        col = table.columns.get(name)
        if col is not None and not col.jsonish:
            expr = f"to_jsonb({expr})"
        for step in f.path:
            key = p.add(step.key) + ("::int" if step.key.lstrip("-").isdigit() else "::text")
            expr = f"{expr}{step.arrow}{key}"
    return expr


def condition(cond: Condition, alias: str, table: Table, p: Params) -> str:
    if isinstance(cond, Logic):
        joiner = " OR " if cond.op == "or" else " AND "
        inner = "(" + joiner.join(condition(c, alias, table, p) for c in cond.children) + ")"
        return f"NOT {inner}" if cond.negated else inner
    sql = _filter(cond, alias, table, p)
    return f"NOT ({sql})" if cond.negated else sql


def _filter(f: Filter, alias: str, table: Table, p: Params) -> str:
    lhs = column_expr(alias, table, f.field, p)
    op = f.op
    if op == "is":
        return f"{lhs} {_IS[f.value]}"  # type: ignore[index]
    if op == "in":
        return f"{lhs} = ANY({p.add(_array_literal(f.value))})"  # type: ignore[arg-type]
    if op in _FTS:
        col = table.columns.get(f.field.name)
        lang = p.add(f.lang) + "::regconfig, " if f.lang else ""
        if not (col and col.type == "tsvector" and not f.field.path):
            lhs = f"to_tsvector({lang}{lhs})"
        return f"{lhs} @@ {_FTS[op]}({lang}{p.add(str(f.value))})"
    value = str(f.value)
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    if f.quant:
        return f"{lhs} {_CMP[op]} {f.quant.upper()}({p.add(value)})"
    return f"{lhs} {_CMP[op]} {p.add(value)}"


def node_select(node: ReadNode, source: str, p: Params, for_count: bool = False) -> str:
    """``SELECT ... FROM source AS alias [joins] WHERE ... ORDER BY ... LIMIT ... OFFSET ...``."""
    a = ident(node.alias)
    cols: list[str] = []
    joins: list[str] = []
    where: list[str] = []
    if node.join is not None:
        r = node.join
        parent = ident(node.parent_alias or "")
        where.extend(f"{a}.{ident(fc)} = {parent}.{ident(c)}" for c, fc in zip(r.columns, r.foreign_columns))
    for item in node.select:
        if isinstance(item, OutCol):
            if for_count:
                continue
            expr = column_expr(node.alias, node.table, item, p)
            if item.cast:
                expr = f"CAST({expr} AS {item.cast})"
            cols.append(f"{expr} AS {ident(item.key)}")
        else:
            if for_count and not item.inner:
                continue
            _embed(item, p, cols, joins, for_count)
    for emb, is_null in node.embed_nulls:
        e = ident(emb.node.alias)
        target = f"row_to_json({e}.*)" if emb.to_one else f"{e}.{e}"
        where.append(f"{target} {'IS NULL' if is_null else 'IS NOT NULL'}")
        if not any(emb is s for s in node.select if isinstance(s, Embed)):
            continue
    where.extend(condition(c, node.alias, node.table, p) for c in node.conditions)
    sql = f"SELECT {', '.join(cols) or '1'} FROM {source} AS {a}"
    if joins:
        sql += " " + " ".join(joins)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if not for_count:
        if node.order:
            terms = []
            for t in node.order:
                term = column_expr(node.alias, node.table, t.field, p)
                if t.direction:
                    term += " " + t.direction.upper()
                if t.nulls:
                    term += " NULLS " + t.nulls.upper()
                terms.append(term)
            sql += " ORDER BY " + ", ".join(terms)
        if node.limit is not None:
            sql += f" LIMIT {p.add(str(node.limit))}"
        if node.offset:
            sql += f" OFFSET {p.add(str(node.offset))}"
    return sql


def _embed(emb: Embed, p: Params, cols: list[str], joins: list[str], for_count: bool) -> None:
    child = emb.node
    e = ident(child.alias)
    source = f"{ident(child.table.schema)}.{ident(child.table.name)}"
    inner_sql = node_select(child, source, p)
    if emb.to_one:
        if not for_count:
            cols.append(f"row_to_json({e}.*) AS {ident(emb.key)}")
        kind = "INNER" if emb.inner else "LEFT"
        joins.append(f"{kind} JOIN LATERAL ({inner_sql}) AS {e} ON TRUE")
    else:
        if not for_count:
            cols.append(f"COALESCE({e}.{e}, '[]') AS {ident(emb.key)}")
        agg = f"SELECT json_agg({e}) AS {e} FROM ({inner_sql}) AS {e}"
        on = f"{e}.{e} IS NOT NULL" if emb.inner else "TRUE"
        joins.append(f"{'INNER' if emb.inner else 'LEFT'} JOIN LATERAL ({agg}) AS {e} ON {on}")


def _body(plan: Plan) -> str:
    req = plan.req
    if req.method == "HEAD" or (plan.mutation is not None and req.prefer.ret not in ("representation",
                                                                                      "headers-only")):
        return "''"
    if plan.call is not None and plan.call.fn.kind == "void":
        return "''"
    agg = "json_agg(_postgrest_t)"
    scalar = plan.call is not None and plan.call.fn.kind == "scalar"
    if scalar:
        agg = "json_agg(_postgrest_t.pgrst_scalar)"
    if req.media.kind == "csv":
        return ("coalesce(string_agg(substring(_postgrest_t::text, 2, length(_postgrest_t::text) - 2), "
                "E'\\n'), '')")
    single = req.media.kind == "object" or (plan.call is not None and not plan.call.fn.returns_set)
    if req.media.stripped:
        agg = f"json_strip_nulls({agg})"
    if single:
        return f"coalesce(({agg})->0, 'null')::text"
    return f"coalesce({agg}, '[]')::text"


def _total(plan: Plan, source: str, p: Params) -> str:
    if plan.count in ("exact", "estimated") and plan.mutation is None:
        return f"(SELECT pg_catalog.count(*) FROM ({node_select(plan.node, source, p, True)}) _c)"
    if plan.mutation is not None and plan.count:
        return "pg_catalog.count(_postgrest_t)"
    return "null::bigint"


def count_query(plan: Plan) -> tuple[str, list[str | None]]:
    """For ``count=planned``: the filtered query the planner estimates."""
    p = Params()
    source = f"{ident(plan.node.table.schema)}.{ident(plan.node.table.name)}"
    return node_select(plan.node, source, p, True), p.values


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


def _call_source(plan: Plan, p: Params) -> str:
    call = plan.call
    assert call is not None
    fn = call.fn
    name = f"{ident(fn.schema)}.{ident(fn.name)}"
    if call.body is not None:
        given = [a for a in fn.args if a.name in _body_keys(call)]
        if given:
            defs = ", ".join(f"{ident(a.name)} {a.type}" for a in given)
            args = ", ".join(f"{ident(a.name)} := pgrst_body.{ident(a.name)}" for a in given)
            frm = f"json_to_recordset(json_build_array({p.add(call.body)}::json)) AS pgrst_body({defs}), LATERAL "
        else:
            args, frm = "", ""
    else:
        args = ", ".join(f"{ident(n)} := {p.add(v)}::{t}" for n, t, v in call.args)
        frm = ""
    invoke = f"{name}({args})"
    if fn.kind == "composite":
        return f"SELECT pgrst_call.* FROM {frm}{invoke} AS pgrst_call"
    return f"SELECT pgrst_call.pgrst_scalar FROM {frm}(SELECT {invoke} AS pgrst_scalar) AS pgrst_call"


def _body_keys(call: object) -> set[str]:
    import orjson

    return set(orjson.loads(call.body))  # type: ignore[attr-defined]


def main_statement(plan: Plan) -> tuple[str, list[str | None]]:
    """The one statement whose single row is (total, page_total, body, headers, status, extra)."""
    p = Params()
    t = plan.node.table
    extra = "null::bigint"
    if plan.mutation is not None:
        cte = f"WITH pgrst_source AS ({_mutation_source(plan, p)}) "
        source = "pgrst_source"
        if plan.mutation.on_conflict is not None:
            extra = "(SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_inserted)"
    elif plan.call is not None:
        cte = f"WITH pgrst_source AS ({_call_source(plan, p)}) "
        source = "pgrst_source"
    else:
        cte = ""
        source = f"{ident(t.schema)}.{ident(t.name)}"
    total = _total(plan, source, p)
    inner = node_select(plan.node, source, p)
    sql = (f"{cte}SELECT {total} AS total, pg_catalog.count(_postgrest_t) AS page_total, {_body(plan)} AS body, "
           "nullif(current_setting('response.headers', true), '') AS response_headers, "
           "nullif(current_setting('response.status', true), '') AS response_status, "
           f"{extra} AS extra FROM ({inner}) _postgrest_t")
    return sql, p.values
