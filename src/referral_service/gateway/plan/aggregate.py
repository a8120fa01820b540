"""Aggregate checks over a planned select tree (PostgREST's ``validateAggFunctions`` and the to-many spread
rule), run after the tree is built so that the gate's error comes first, as in PostgREST."""

from __future__ import annotations

from .. import errors
from .nodes import Embed, OutCol, ReadNode


def _uses(node: ReadNode) -> bool:
    for s in node.select:
        if isinstance(s, OutCol):
            if s.agg:
                return True
        elif _uses(s.node):
            return True
    return False


def _to_many_spread_agg(node: ReadNode) -> bool:
    for s in node.select:
        if isinstance(s, Embed):
            if s.spread and not s.to_one and any(c.agg for c in s.columns):
                return True
            if _to_many_spread_agg(s.node):
                return True
    return False


def check_aggregates(root: ReadNode, enabled: bool) -> None:
    if not _uses(root):
        return
    if not enabled:
        raise errors.aggregates_not_allowed()
    if _to_many_spread_agg(root):
        raise errors.not_implemented("Aggregates are not implemented for one-to-many or many-to-many spreads.")


def groups(node: ReadNode) -> bool:
    """Whether ``node``'s own SELECT aggregates (then every other output column goes into GROUP BY)."""
    if node.hoists:
        return False
    for s in node.select:
        if isinstance(s, OutCol):
            if s.agg:
                return True
        elif s.spread and s.to_one and any(c.agg for c in s.columns):
            return True
    return False
