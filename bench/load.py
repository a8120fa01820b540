"""Run wrk against the gateway and pgbench against the database; both return the same kind of numbers."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
LUA = Path(__file__).with_name("wrk") / "workload.lua"


def wrk(base: str, method: str, path: str, body: str | None, headers: dict[str, str], clients: int,
        duration: int, ids_file: Path | None, terms_file: Path | None) -> dict:
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_PATH": path, "BENCH_BODY": body or "",
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
           "BENCH_IDS": str(ids_file or ""), "BENCH_TERMS": str(terms_file or "")}
    threads = min(2, clients)
    cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--timeout", "10s",
           "-s", str(LUA), base]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"] + r["non_2xx"]
    return {"rate": r["requests"] / (r["duration_us"] / 1e6), "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000, "requests": r["requests"], "errors": errors,
            "non_2xx": r["non_2xx"]}


def pgbench(url: str, script: str, variables: dict[str, str], clients: int, duration: int, role: str,
            protocol: str = "prepared") -> dict:
    """`pgbench -M prepared` (or `-M extended`) with per-transaction logs, so percentiles are computed like wrk's.

    In pipeline mode with `-M prepared`, pgbench prepares every statement when it connects, before the script's
    set_config runs; the authenticator may not even look into the API schema, so the session starts as `role`.
    `-M extended` (through PgBouncer in transaction mode, where prepared statements cannot go in 1.18) parses
    each statement in its turn, after the script's set_config; PgBouncer would refuse the `options` startup
    parameter anyway."""
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": parts.password or "", "PGHOST": parts.hostname or "",
           "PGPORT": str(parts.port), "PGUSER": parts.username or "", "PGDATABASE": parts.path.lstrip("/")}
    env.pop("PGOPTIONS", None)
    if protocol == "prepared":
        env["PGOPTIONS"] = f"-c role={role}"
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        script_file = Path(tmp) / "script.sql"
        script_file.write_text(script)
        cmd = [PGBENCH, "-n", "-M", protocol, "-c", str(clients), "-j", str(min(2, clients)),
               "-T", str(duration), "-f", str(script_file), "--log", f"--log-prefix={tmp}/tx"]
        for name, value in variables.items():
            cmd += ["-D", f"{name}={value}"]
        done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=duration + 120)
        latencies = [int(line.split()[2]) for log in Path(tmp).glob("tx*") for line in log.read_text().splitlines()]
    tps = next((float(ln.split("=")[1].split()[0]) for ln in done.stdout.splitlines() if ln.startswith("tps =")),
               None)
    failed = next((int(ln.split(":")[1].split()[0]) for ln in done.stdout.splitlines()
                   if ln.startswith("number of failed transactions")), 0)
    aborted = done.returncode != 0 or tps is None
    if tps is None:  # every client aborted (a statement timeout, say): count what finished
        tps = len(latencies) / duration
    errs = [ln for ln in done.stderr.splitlines() if "ERROR" in ln]
    extra = {"aborted": (errs or done.stderr.splitlines() or [""])[-1][:300]} if aborted else {}
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {"rate": tps, "p50_ms": q[49] / 1000, "p99_ms": q[98] / 1000, "requests": len(latencies),
            "errors": failed + aborted, **extra}
