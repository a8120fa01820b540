"""The function call of an RPC plan (the ``pgrst_source`` CTE)."""

from __future__ import annotations

from ..plan import Plan
from .fragments import Params, ident


def _call_source(plan: Plan, p: Params) -> str:
    call = plan.call
    assert call is not None
    fn = call.fn
    name = f"{ident(fn.schema)}.{ident(fn.name)}"
    variadic = {a.name for a in fn.args if a.variadic}
    if call.raw is not None:
        args, frm = f"{p.add(call.raw)}::{fn.args[0].type}", ""
    elif call.body is not None:
        given = [a for a in fn.args if a.name in _body_keys(call)]
        if given:
            defs = ", ".join(f"{ident(a.name)} {a.type}" for a in given)
            args = ", ".join(f"{'VARIADIC ' * (a.name in variadic)}{ident(a.name)} := pgrst_body.{ident(a.name)}"
                             for a in given)
            frm = f"json_to_recordset(json_build_array({p.add(call.body)}::json)) AS pgrst_body({defs}), LATERAL "
        else:
            args, frm = "", ""
    else:
        args = ", ".join(f"{'VARIADIC ' * (n in variadic)}{ident(n)} := {p.add(v)}::{t}" for n, t, v in call.args)
        frm = ""
    invoke = f"{name}({args})"
    if fn.kind == "composite":
        return f"SELECT pgrst_call.* FROM {frm}{invoke} AS pgrst_call"
    return f"SELECT pgrst_call.pgrst_scalar FROM {frm}(SELECT {invoke} AS pgrst_scalar) AS pgrst_call"


def _body_keys(call: object) -> set[str]:
    import orjson

    return set(orjson.loads(call.body))  # type: ignore[attr-defined]
