"""Schema cache: introspection of the exposed schemas, and lookups the planner needs."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from . import errors


@dataclass(slots=True)
class Column:
    name: str
    type: str  # format_type(), usable in a column definition list
    nullable: bool
    default: str | None
    description: str | None = None
    jsonish: bool = False  # json/jsonb: JSON paths apply directly; other types go through to_jsonb()


@dataclass(slots=True)
class Junction:
    """The middle relation of a many-to-many relationship and its two foreign keys."""

    table: str
    constraint1: str  # junction → origin
    columns1: tuple[str, ...]  # the junction's columns of constraint1
    constraint2: str  # junction → target
    columns2: tuple[str, ...]


CARDINALITIES = ("o2m", "m2o", "o2o", "m2m", "computed")  # PostgREST's order of candidates (§1.9)
WIRE_CARDINALITY = {"o2m": "one-to-many", "m2o": "many-to-one", "o2o": "one-to-one", "m2m": "many-to-many"}


@dataclass(slots=True)
class Relationship:
    """One direction of a relationship, from ``table`` (the origin) to ``foreign_table`` (the target).

    ``columns``/``foreign_columns`` pair up: the target's ``foreign_columns[i]`` equals the origin's
    ``columns[i]`` (for many-to-many: through the junction's columns)."""

    name: str  # FK constraint name; the function name of a computed relationship
    table: str
    columns: tuple[str, ...]
    foreign_table: str
    foreign_columns: tuple[str, ...]
    to_one: bool
    schema: str = ""
    cardinality: str = "m2o"  # o2m | m2o | o2o | m2m | computed
    is_self: bool = False
    junction: Junction | None = None
    function: str | None = None  # computed: called with the origin's row
    table_is_view: bool = False
    foreign_is_view: bool = False
    parent: bool = False  # one-to-one seen from the referenced side

    def sort_key(self) -> tuple:
        j = self.junction
        inner = (j.table, j.constraint1, j.constraint2, j.columns1, j.columns2) if j else \
            (self.name, tuple(zip(self.columns, self.foreign_columns)), self.parent)
        return (self.schema, self.foreign_table, self.is_self, CARDINALITIES.index(self.cardinality), inner,
                self.table_is_view, self.foreign_is_view)


@dataclass(slots=True)
class Table:
    schema: str
    name: str
    kind: str  # r, v, m, f, p
    columns: dict[str, Column]
    pk: tuple[str, ...] = ()
    insertable: bool = True
    updatable: bool = True
    deletable: bool = True
    description: str | None = None
    # Row-level security may hide rows from the caller: a table with RLS enabled, or any view (its base
    # tables may have it). Planner estimates of such a relation count hidden rows too.
    row_filtered: bool = False
    # Computed fields: functions of this relation's row returning a scalar, usable as columns
    # (name → the function's schema); never part of `*`.
    computed: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Arg:
    name: str
    type: str
    has_default: bool
    variadic: bool = False  # VARIADIC: its type is the array type; called as `VARIADIC name := array`


@dataclass(slots=True)
class Function:
    schema: str
    name: str
    args: list[Arg]
    return_type: str
    returns_set: bool
    kind: str  # scalar | composite | void
    return_table: str | None  # exposed table/view whose row type it returns (for embedding)
    out_columns: list[Column]
    volatility: str  # i s v
    description: str | None = None

    @property
    def required(self) -> set[str]:
        return {a.name for a in self.args if not a.has_default}


@dataclass(slots=True)
class SchemaCache:
    schemas: list[str]
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    functions: dict[tuple[str, str], list[Function]] = field(default_factory=dict)
    relationships: list[Relationship] = field(default_factory=list)
    # (schema, origin) → every relationship from it, in PostgREST's candidate order
    rels_from: dict[tuple[str, str], list[Relationship]] = field(default_factory=dict)
    roles: dict[str, bool] = field(default_factory=dict)  # role name → authenticator may switch to it
    # role → its ALTER ROLE ... SET settings (user-settable ones), applied per request: SET ROLE alone
    # would not apply them (PostgreSQL applies them at login only)
    role_settings: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    descriptions: dict[str, str | None] = field(default_factory=dict)  # schema comments

    def table(self, schema: str, name: str) -> Table:
        t = self.tables.get((schema, name))
        if t is None:
            names = [n for (s, n) in self.tables if s == schema]
            close = difflib.get_close_matches(name, names, n=1)
            raise errors.table_not_found(schema, name, close[0] if close else None)
        return t

    def functions_named(self, schema: str, name: str) -> list[Function]:
        return self.functions.get((schema, name), [])

    def rels_of(self, schema: str, origin: str) -> list[Relationship]:
        return self.rels_from.get((schema, origin), [])


# Partitions (PARTITION OF) stay out of the cache, as in PostgREST: only their parent is exposed. Every query
# over relations below says so, or a partition's columns would have no table to belong to.
_TABLES = """
select n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class'),
       c.relkind in ('r', 'p') or (pg_relation_is_updatable(c.oid, true) & 8) = 8,
       c.relkind in ('r', 'p') or (pg_relation_is_updatable(c.oid, true) & 4) = 4,
       c.relkind in ('r', 'p') or (pg_relation_is_updatable(c.oid, true) & 16) = 16,
       coalesce((select array_agg(a.attname order by array_position(k.conkey, a.attnum))
                 from pg_constraint k join pg_attribute a on a.attrelid = k.conrelid and a.attnum = any(k.conkey)
                 where k.conrelid = c.oid and k.contype = 'p'), '{}'),
       c.relrowsecurity or c.relkind = 'v'
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'f', 'p') and not c.relispartition
"""

_COLUMNS = """
select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid),  -- identity columns and domains have their defaults elsewhere
                (select format('nextval(%%L::regclass)', q.objid::regclass) from pg_depend q
                  where a.attidentity in ('a', 'd') and q.refobjid = c.oid and q.refobjsubid = a.attnum
                    and q.classid = 'pg_class'::regclass and q.deptype = 'i'),
                (select pg_get_expr(t.typdefaultbin, 0) from pg_type t where t.oid = a.atttypid and t.typtype = 'd')),
       col_description(c.oid, a.attnum),
       a.atttypid in ('json'::regtype, 'jsonb'::regtype)
from pg_attribute a
join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'f', 'p') and not c.relispartition
  and a.attnum > 0 and not a.attisdropped
order by c.oid, a.attnum
"""

_FKS = """
select k.conname, n1.nspname, c1.relname,
       array(select attname from unnest(k.conkey) with ordinality u(n, o)
             join pg_attribute on attrelid = k.conrelid and attnum = u.n order by o),
       n2.nspname, c2.relname,
       array(select attname from unnest(k.confkey) with ordinality u(n, o)
             join pg_attribute on attrelid = k.confrelid and attnum = u.n order by o)
from pg_constraint k
join pg_class c1 on c1.oid = k.conrelid join pg_namespace n1 on n1.oid = c1.relnamespace
join pg_class c2 on c2.oid = k.confrelid join pg_namespace n2 on n2.oid = c2.relnamespace
where k.contype = 'f' and k.conparentid = 0 and n1.nspname not in ('pg_catalog', 'information_schema')
"""

# Primary-key and unique constraints of every relation: an FK whose columns are exactly one of them is
# one-to-one; a junction's two FKs must lie inside its primary key.
_KEYS = """
select n.nspname, c.relname, k.contype,
       array(select attname from unnest(k.conkey) u(n) join pg_attribute on attrelid = k.conrelid and attnum = u.n)
from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
where k.contype in ('p', 'u') and n.nspname not in ('pg_catalog', 'information_schema')
"""

# Functions of one relation's row (computed fields and computed relationships), in the exposed schemas.
_COMPUTED = """
select n.nspname, p.proname, an.nspname, ac.relname, rn.nspname, rc.relname, p.proretset, p.prorows
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
join pg_type at on at.oid = p.proargtypes[0]
join pg_class ac on ac.oid = at.typrelid and ac.relkind in ('r', 'v', 'm', 'f', 'p') and not ac.relispartition
join pg_namespace an on an.oid = ac.relnamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid and rc.relkind in ('r', 'v', 'm', 'f', 'p') and not rc.relispartition
left join pg_namespace rn on rn.oid = rc.relnamespace
where p.pronargs = 1 and p.prokind = 'f' and n.nspname = any(%s) and rt.oid <> 'void'::regtype
"""

# Base tables each exposed view reads from (through its rewrite rule).
_VIEW_DEPS = """
select distinct vn.nspname, v.relname, bn.nspname, b.relname
from pg_class v join pg_namespace vn on vn.oid = v.relnamespace
join pg_rewrite r on r.ev_class = v.oid
join pg_depend d on d.objid = r.oid and d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
join pg_class b on b.oid = d.refobjid join pg_namespace bn on bn.oid = b.relnamespace
where v.relkind in ('v', 'm') and vn.nspname = any(%s) and b.oid <> v.oid and b.relkind in ('r', 'p', 'v', 'm')
"""

_FUNCTIONS = """
select n.nspname, p.proname, p.provolatile, p.proretset, format_type(p.prorettype, null), t.typtype,
       (select c.relname from pg_class c join pg_namespace cn on cn.oid = c.relnamespace
         where c.oid = t.typrelid and cn.nspname = n.nspname),
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       coalesce(array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                      with ordinality u(x, o) order by o), '{}'),
       p.pronargs, p.pronargdefaults, obj_description(p.oid, 'pg_proc'),
       coalesce(array(select a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                      from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0
                      and not a.attisdropped order by a.attnum), '{}')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
where n.nspname = any(%s) and p.prokind = 'f'
order by p.oid  -- overloads in creation order, as PostgREST lists them in PGRST203
"""

_ROLES = "select rolname, pg_has_role(current_user, oid, 'MEMBER') from pg_roles"
# This database's settings override the cluster-wide ones; only user-context settings may be set per request.
_ROLE_SETTINGS = """
select r.rolname, array_agg(kv[1] order by kv[1]), array_agg(kv[2] order by kv[1])
from (select distinct on (s.setrole, split_part(c, '=', 1)) s.setrole,
             array[split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)] as kv
      from pg_db_role_setting s, unnest(s.setconfig) as c
      where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
        and s.setrole <> 0
      order by s.setrole, split_part(c, '=', 1), s.setdatabase desc) x
join pg_roles r on r.oid = x.setrole
join pg_settings p on p.name = kv[1] and p.context = 'user'
where pg_has_role(current_user, r.oid, 'MEMBER')
group by r.rolname
"""
_SCHEMAS = "select nspname, obj_description(oid, 'pg_namespace') from pg_namespace where nspname = any(%s)"


def _function(row: Any) -> Function:
    (schema, name, vol, retset, rettype, typtype, rettable, argnames, argmodes, argtypes, nargs, ndefaults,
     comment, attrs) = row
    modes = argmodes or ["i"] * len(argtypes)
    args: list[Arg] = []
    outs: list[Column] = []
    in_index = 0
    for i, typ in enumerate(argtypes):
        aname = argnames[i] if i < len(argnames) else ""
        mode = modes[i]
        if mode in ("i", "b", "v"):
            has_default = in_index >= nargs - ndefaults
            args.append(Arg(aname, typ, has_default, mode == "v"))
            in_index += 1
        if mode in ("o", "b", "t"):
            outs.append(Column(aname, typ, True, None))
    if rettype == "void":
        kind = "void"
    elif typtype == "c" or (rettype == "record" and outs):
        kind = "composite"
        if not outs:
            outs = [Column(a.split(" ", 1)[0], a.split(" ", 1)[1], True, None) for a in attrs]
    else:
        kind = "scalar"
    return Function(schema, name, args, rettype, retset, kind, rettable, outs, vol, comment)


async def load(conn: Any, schemas: list[str]) -> SchemaCache:
    """Introspect ``schemas`` over an open psycopg AsyncConnection."""
    cache = SchemaCache(schemas)
    async with conn.cursor() as cur:
        await cur.execute(_SCHEMAS, [schemas])
        cache.descriptions = {r[0]: r[1] for r in await cur.fetchall()}
        await cur.execute(_TABLES, [schemas])
        for s, n, kind, comment, ins, upd, dele, pk, row_filtered in await cur.fetchall():
            cache.tables[(s, n)] = Table(s, n, kind, {}, tuple(pk), ins, upd, dele, comment, row_filtered)
        await cur.execute(_COLUMNS, [schemas])
        for s, t, name, typ, nullable, default, comment, jsonish in await cur.fetchall():
            cache.tables[(s, t)].columns[name] = Column(name, typ, nullable, default, comment, jsonish)
        await cur.execute(_FKS)
        fks = [(r[0], (r[1], r[2]), tuple(r[3]), (r[4], r[5]), tuple(r[6])) for r in await cur.fetchall()]
        await cur.execute(_KEYS)
        keys: dict[tuple[str, str], list[tuple[str, frozenset[str], tuple[str, ...]]]] = {}
        for ks, kn, kind, cols in await cur.fetchall():
            keys.setdefault((ks, kn), []).append((kind, frozenset(cols), tuple(cols)))
        await cur.execute(_COMPUTED, [schemas])
        computed = list(await cur.fetchall())
        await cur.execute(_VIEW_DEPS, [schemas])
        deps: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for vs, vn, bs, bn in await cur.fetchall():
            deps.setdefault((bs, bn), set()).add((vs, vn))
        await cur.execute(_FUNCTIONS, [schemas])
        for row in await cur.fetchall():
            fn = _function(row)
            cache.functions.setdefault((fn.schema, fn.name), []).append(fn)
        await cur.execute(_ROLES)
        cache.roles = {r[0]: r[1] for r in await cur.fetchall()}
        await cur.execute(_ROLE_SETTINGS)
        cache.role_settings = {r[0]: tuple(zip(r[1], r[2], strict=True)) for r in await cur.fetchall()}
    from . import relationships

    relationships.build(cache, fks, keys, deps, computed)
    return cache
