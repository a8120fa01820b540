"""The SQL the gateway really sends, read from the server log (`log_statement = all`), turned into a
pgbench script that sends the same statements with the same parameters in one pipeline (one round trip).

Values that vary per request (the offer id, the search term) become lookups into bench.ids / bench.terms
by a random row number, so pgbench touches as many different rows as wrk does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PREFIX = re.compile(r"^@@(\d+)@@ (LOG|DETAIL):  (.*)$")
EXECUTE = re.compile(r"^(?:execute [^:]+|statement): (.*)$", re.DOTALL)
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
PLACEHOLDER = re.compile(r"\$(\d+)\b")


@dataclass
class Statement:
    sql: str
    params: dict[int, str | None]


def read_log(path: Path, offset: int) -> list[tuple[int, str, str]]:
    """(pid, LOG|DETAIL, text) entries after `offset`; continuation lines are joined to their entry."""
    entries: list[list] = []
    with path.open(errors="replace") as f:
        f.seek(offset)
        for line in f.read().splitlines():
            m = PREFIX.match(line)
            if m:
                entries.append([int(m.group(1)), m.group(2), m.group(3)])
            elif entries:
                entries[-1][2] += "\n" + line
    return [tuple(e) for e in entries]


def transaction(entries: list[tuple[int, str, str]]) -> list[Statement]:
    """The statements of the first request in the log, with their parameters: an explicit BEGIN ...
    COMMIT/ROLLBACK, or the gateway's implicit transaction (its set_config statement and every statement
    after it on that connection: the log window holds one request)."""
    out: list[Statement] = []
    pid = None
    implicit = False
    for epid, kind, text in entries:
        if pid is not None and epid != pid:
            continue
        if kind == "LOG":
            m = EXECUTE.match(text)
            if not m:
                continue
            sql = m.group(1).strip()
            if pid is None:
                implicit = sql.startswith("select set_config('search_path'")
                if not (implicit or sql.upper().startswith("BEGIN")):
                    continue
                pid = epid
            out.append(Statement(sql, {}))
            if sql.upper() in ("COMMIT", "ROLLBACK"):
                return out
        elif kind == "DETAIL" and out and text.startswith("parameters: "):
            for n, value in PARAM.findall(text):
                out[-1].params[int(n)] = None if value == "NULL" else value[1:-1].replace("''", "'")
    if implicit and len(out) > 1:
        return out
    raise ValueError("no complete transaction found in the server log")


def pgbench_script(stmts: list[Statement], key: str, sample_id: str, term: str,
                   n_ids: int, n_terms: int) -> tuple[str, dict[str, str]]:
    """The script text and the -D variables it needs."""
    variables: dict[str, str] = {}
    lines = []
    uses_id = uses_term = False
    for i, st in enumerate(stmts):
        def sub(m: re.Match, i: int = i, st: Statement = st) -> str:
            nonlocal uses_id, uses_term
            value = st.params[int(m.group(1))]
            if value is None:
                return "NULL"
            if value == sample_id:
                uses_id = True
                return "(select id from bench.ids where rn = :r)"
            if value == term:
                uses_term = True
                return "(select term from bench.terms where rn = :t)"
            name = f"{key.lower()}_{i}_{m.group(1)}"
            variables[name] = value
            if sample_id in value:
                uses_id = True
                variables[name] = value.replace(sample_id, "@ID@")
                return f"replace(:{name}, '@ID@', (select id::text from bench.ids where rn = :r))"
            return f":{name}"

        lines.append(PLACEHOLDER.sub(sub, st.sql).replace("\n", " ") + ";")
    head = []
    if uses_id:
        head.append(f"\\set r random(1, {n_ids})")
    if uses_term:
        head.append(f"\\set t random(1, {n_terms})")
    script = "\n".join([*head, "\\startpipeline", *lines, "\\endpipeline"]) + "\n"
    return script, variables
