"""Plan and SQL per request *shape*: a read repeated with other values skips planning and SQL building.

A shape is everything a read's plan and SQL depend on except the values bound as plain parameters: method,
path, schema, the ``Accept``/``Prefer``/``Range`` headers, and the query string with the values of the
filters grammar.BOUND_AS_WRITTEN names left out (request.py: ``query_shape``, ``slots``). The plan reads
neither the role nor other headers, so one entry serves every caller (RLS applies when the SQL runs).

The first request of a shape is planned as usual; then once more with a sentinel in place of each left-out
value. Where the sentinels come out among the parameters says where the next request's values go. A shape
is kept only when the SQL text is the same both times and every other parameter is the same constant, so a
value that changed the plan would show up here rather than in a wrong answer. Only reads of tables and
views (GET, HEAD): writes and calls look at their values while planning, and ``count=planned`` builds a
second query from the plan's filters.

Bounded: the oldest shape goes first when full. A refused shape is remembered too, so that it is planned
once per request, not twice. One cache per schema cache: a reload starts empty.
Measured (bench W2, one worker): planning and SQL building were ~16 % of the gateway's CPU per request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from .plan import Plan
from .request import ApiRequest

Statement = tuple[str, list[str | None]]
_SENTINEL = "\x00shape-value-%d\x00"  # NUL: no value a client sends can look like it (refused before SQL)


@dataclasses.dataclass(frozen=True, slots=True)
class _Template:
    plan: Plan  # planned from the sentinel copy: holds no value, header or body of any request
    sql: str
    params: tuple[str | None, ...]  # the constants; slot positions are overwritten
    slots: tuple[tuple[int, int], ...]  # (parameter index, index in req.slots)


class ShapeCache:
    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[tuple, _Template | None] = {}  # None: a shape the checks refused (not re-learnt)

    @staticmethod
    def key(req: ApiRequest) -> tuple | None:
        if req.kind != "relation" or req.method not in ("GET", "HEAD"):
            return None
        h = req.headers
        return (req.method, req.path, req.schema, h.get("accept"), h.get("prefer"), h.get("range"), req.query_shape)

    def get(self, key: tuple, req: ApiRequest) -> Plan | None:
        """A plan for ``req`` with its statement filled in, or None for a shape not seen yet."""
        t = self._entries.get(key)
        if t is None:
            return None
        params = list(t.params)
        slots = req.slots
        for i, k in t.slots:
            params[i] = slots[k].value  # type: ignore[assignment]  (str: BOUND_AS_WRITTEN values)
        req.media = t.plan.req.media  # as media.negotiate chose for this shape (the SQL's body depends on it)
        return dataclasses.replace(t.plan, req=req, statement=(t.sql, params))

    def learn(self, key: tuple, req: ApiRequest, plan: Plan, statement: Statement,
              replan: Callable[[ApiRequest], tuple[Plan, Statement]]) -> None:
        """Remember the shape of ``req`` (planned as ``plan`` into ``statement``) when it passes the checks."""
        if not self.size or key in self._entries or plan.count in ("planned", "estimated") \
                or req.explain is not None:
            return
        sentinel_plan, (sql, params) = replan(_with_sentinels(req))
        template = _template(sentinel_plan, sql, params, statement, req)
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = template

    def __len__(self) -> int:
        """The shapes kept (refused ones not counted)."""
        return sum(t is not None for t in self._entries.values())


def _with_sentinels(req: ApiRequest) -> ApiRequest:
    """A copy of ``req`` whose slot values are sentinels, without the headers, cookies and body (the plan
    reads none of them; the copy is what the cache keeps)."""
    marked = {id(f): dataclasses.replace(f, value=_SENTINEL % k) for k, f in enumerate(req.slots)}
    conditions = {path: [marked.get(id(c), c) for c in conds] for path, conds in req.conditions.items()}
    return dataclasses.replace(req, conditions=conditions, headers={}, cookies={}, body=b"",
                               slots=[marked[id(f)] for f in req.slots])


def _template(sentinel_plan: Plan, sql: str, params: list[str | None], real: Statement,
              req: ApiRequest) -> _Template | None:
    real_sql, real_params = real
    if sql != real_sql or len(params) != len(real_params):
        return None
    sentinels = {_SENTINEL % k: k for k in range(len(req.slots))}
    constants: list[str | None] = []
    slots = []
    for i, (p, r) in enumerate(zip(params, real_params)):
        k = sentinels.get(p)  # type: ignore[arg-type]
        if k is None and p != r:
            return None  # a parameter that depends on a value some other way
        if k is not None and r != req.slots[k].value:
            return None
        constants.append(p if k is None else None)
        if k is not None:
            slots.append((i, k))
    return _Template(sentinel_plan, sql, tuple(constants), tuple(slots))


def plan_with_cache(cache: ShapeCache, req: ApiRequest, replan: Callable[[ApiRequest], tuple[Plan, Statement]]
                    ) -> Plan:
    """``req``'s plan with its statement: from the cache, else from ``replan`` (plan, choose the media type,
    build the SQL), and learnt when it is a read."""
    key = cache.key(req)
    if key is not None:
        hit = cache.get(key, req)
        if hit is not None:
            return hit
    plan, statement = replan(req)
    if key is not None:
        cache.learn(key, req, plan, statement, replan)
    plan.statement = statement
    return plan
