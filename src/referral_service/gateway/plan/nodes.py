"""The Plan and its parts: what the query builder turns into SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..grammar import Condition, OrderTerm
from ..request import ApiRequest
from ..schema import Column, Function, Relationship, Table


@dataclass(slots=True)
class OutCol:
    column: str  # "*" for count()
    path: tuple
    key: str
    cast: str | None
    agg: str | None = None  # sum | avg | max | min | count
    agg_cast: str | None = None
    hoisted: bool = False  # in a to-one spread: the raw value here, the aggregate at the ancestor


@dataclass(slots=True)
class SpreadCol:
    """A column a spread lifts into its parent: the child's output ``key``, and the aggregate the parent
    applies to it when a to-one spread hoisted one."""

    key: str
    agg: str | None = None
    agg_cast: str | None = None


@dataclass(slots=True)
class Embed:
    node: ReadNode
    key: str
    rel: Relationship
    inner: bool
    lateral: str = ""  # PostgREST's lateral alias: <parent relation>_<key>_<depth>
    spread: bool = False
    empty: bool = False  # rel(): joined (filters, !inner, is.null act) but no output
    columns: list[SpreadCol] = field(default_factory=list)  # a spread's lifted columns

    @property
    def to_one(self) -> bool:
        return self.rel.to_one


@dataclass(slots=True)
class ReadNode:
    table: Table
    alias: str
    select: list[OutCol | Embed]
    conditions: list[Condition] = field(default_factory=list)
    embed_nulls: list[tuple[Embed, bool]] = field(default_factory=list)  # (embed, must be null)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    join: Relationship | None = None  # how this node joins its parent
    parent_alias: str | None = None
    parent_table: Table | None = None  # for computed relationships: the row type the function takes
    hoists: bool = False  # a to-one spread: its aggregates are applied by the nearest non-spread ancestor

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.select]


@dataclass(slots=True)
class Mutation:
    kind: str  # insert | update | delete | put
    columns: list[Column]
    body: str | None
    body_is_array: bool = False
    on_conflict: tuple[str, ...] | None = None
    resolution: str | None = None
    missing_default: bool = False
    conditions: list[Condition] = field(default_factory=list)


@dataclass(slots=True)
class Call:
    fn: Function
    body: str | None  # POST: JSON object of the given args
    args: list[tuple[str, str, str]]  # (name, type, raw value) for GET
    raw: str | None = None  # the whole body, for a single unnamed json/jsonb/text/xml/bytea parameter


@dataclass(slots=True)
class Plan:
    req: ApiRequest
    node: ReadNode
    read_only: bool
    mutation: Mutation | None = None
    call: Call | None = None
    offset: int = 0  # the root range lower bound, for Content-Range
    count: str | None = None
    statement: tuple[str, list[str | None]] | None = None  # its SQL and parameters, when known (shapes.py)
