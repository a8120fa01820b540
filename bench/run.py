"""`make bench`: the gateway against the database's own ceiling, per data size, workload and client count.

For each size: a fresh seeded database on a throwaway cluster, the gateway as `referral-service serve`,
the SQL of each workload captured from the server log, then for each client count wrk (HTTP) right
before pgbench (the same SQL in one pipeline). With `--via pgbouncer` (or `direct,pgbouncer`, side by side)
both go through a PgBouncer in transaction mode, as deployed: the gateway without prepared statements (LISTEN
on a direct connection), pgbench with `-M extended`. Prints a table; writes bench/results/<stamp>.json and .png.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import capture
import cpu
import load
import psycopg
import report
from benchdb import SIZES, BenchCluster
from gateway import Gateway
from rich.console import Console
from rich.progress import Progress
from workloads import WORKLOADS, send_sample

from referral_service import config, localdb
from referral_service.pgbouncer import Bouncer
from referral_service.seed_vocab import SEARCH_TERMS

VIAS = ("direct", "pgbouncer")

console = Console() if sys.stdout.isatty() else Console(width=200)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("wrk is missing: sudo apt-get install -y wrk")
    console.print("installing wrk (apt-get install -y wrk)")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)


def bcrypt_cost_ms(url: str) -> float:
    """One bcrypt hash at the cost login uses (10), measured in the database itself."""
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for _ in range(10):
            conn.execute("select crypt('correct horse 1', gen_salt('bf', 10))").fetchone()
        return (time.perf_counter() - start) * 100


def capture_scripts(bc: BenchCluster, gw: Gateway, fx, workloads) -> dict:
    sample, term = fx.ids[0], SEARCH_TERMS[0]
    scripts = {}
    bc.set_logging(True)
    time.sleep(0.5)
    try:
        for w in workloads:
            offset = bc.log_path.stat().st_size
            status = send_sample(gw.base, w, fx, sample, term)
            if status >= 300:
                raise RuntimeError(f"{w.key}: the sample request answered {status}")
            time.sleep(0.3)
            stmts = capture.transaction(capture.read_log(bc.log_path, offset))
            scripts[w.key] = capture.pgbench_script(stmts, w.key, sample, term, len(fx.ids), len(SEARCH_TERMS))
    finally:
        bc.set_logging(False)
    return scripts


@dataclass
class Route:
    """One way from the clients to the database: the gateway in front of it, and where pgbench connects."""

    via: str  # "direct" or "pgbouncer"
    gw: Gateway
    db_url: str  # pgbench's: the same server (or PgBouncer) the gateway queries, as the authenticator
    protocol: str  # pgbench -M: prepared straight to PostgreSQL, extended through PgBouncer
    bouncer_pid: int | None = None


def start_bouncer(bc: BenchCluster) -> Bouncer:
    """PgBouncer as `serve --pgbouncer` runs it (src/referral_service/pgbouncer.py: transaction pooling, pool 20)
    in front of the bench cluster, on a free port, in a folder of this run's own."""
    bouncer = Bouncer(db_port=bc.cluster.port, port=localdb.free_port(),
                      home=config.DATA_DIR / f"bench-pgbouncer-{os.getpid()}")
    bouncer.start({"authenticator": bc.secrets.authenticator_password})
    return bouncer


def remove_bouncer(bouncer: Bouncer) -> None:
    bouncer.stop()
    if bouncer.home.is_symlink():  # localdb.service_folder put the files under /var/lib/referral-service
        shutil.rmtree(bouncer.home.resolve(), ignore_errors=True)
        bouncer.home.unlink()
    else:
        shutil.rmtree(bouncer.home, ignore_errors=True)


def make_routes(bc: BenchCluster, fx, args, stack: contextlib.ExitStack) -> list[Route]:
    routes = []
    for via in args.via:
        if via == "direct":
            gw = Gateway(fx.gateway_url, bc.secrets.jwt_secret, args.workers, args.pool)
            routes.append(Route(via, gw, fx.gateway_url, "prepared"))
        else:
            bouncer = start_bouncer(bc)
            stack.callback(remove_bouncer, bouncer)
            url = bouncer.url("authenticator", bc.secrets.authenticator_password, fx.name)
            # as `serve --pgbouncer`: LISTEN needs a session of its own, which transaction pooling cannot give
            gw = Gateway(url, bc.secrets.jwt_secret, args.workers, args.pool,
                         {"PGRST_DB_LISTEN_URI": fx.gateway_url, "PGRST_DB_PREPARED_STATEMENTS": "false"})
            routes.append(Route(via, gw, url, "extended", int(bouncer.pidfile.read_text())))
    return routes


def run_size(bc: BenchCluster, size: str, args, out: dict, tmp: Path) -> None:
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"seeding {size} ({SIZES[size][0]:,} offers, {SIZES[size][1]:,} events)")
        fx = bc.prepare(size, lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"[bold]{size}[/bold]: seeded in {fx.seed_stats['total_seconds']}s "
                  f"(offers {fx.seed_stats['offers_seconds']}s, events {fx.seed_stats['events_seconds']}s)")
    ids_file, terms_file = tmp / "ids.txt", tmp / "terms.txt"
    ids_file.write_text("\n".join(fx.ids) + "\n")
    terms_file.write_text("\n".join(urllib.parse.quote(t, safe="") for t in SEARCH_TERMS) + "\n")
    workloads = [w for w in WORKLOADS if w.key in args.workloads]
    postmaster = cpu.postmaster_pid(bc.cluster.pgdata)
    rss_peak: dict[str, dict[int, float]] = {}
    with contextlib.ExitStack() as stack:
        routes = make_routes(bc, fx, args, stack)
        for r in routes:
            r.gw.start(tmp / f"gateway-{size}-{r.via}.log")
            stack.callback(r.gw.stop)
            rss_peak[r.via] = {}
        # the SQL of each route's gateway (prepared statements off through PgBouncer): pgbench sends what it sent
        scripts = {r.via: capture_scripts(bc, r.gw, fx, workloads) for r in routes}
        out["scripts"][size] = {k: s for k, (s, _v) in scripts[routes[0].via].items()}
        for r in routes[1:]:
            out["scripts"][f"{size} via {r.via}"] = {k: s for k, (s, _v) in scripts[r.via].items()}
        for w in workloads:
            body, headers = w.body_for(fx), w.request_headers(fx)
            ids = ids_file if "{id}" in w.path + (body or "") else None
            terms = terms_file if "{term}" in w.path else None
            if w.setup:  # e.g. W1D's batch of recent drafts: changes the data for the workloads after it
                with psycopg.connect(fx.admin_url, autocommit=True) as conn:
                    conn.execute(w.setup)
            for r in routes:
                load.wrk(r.gw.base, w.method, w.path, body, headers, 8, 2, ids, terms)  # warm-up
            for c in args.clients:
                for r in routes:  # side by side: each client count through every route before the next
                    script, variables = scripts[r.via][w.key]

                    def measure(r: Route = r) -> dict:
                        with cpu.Meter(r.gw.proc.pid, postmaster, r.bouncer_pid) as gm:
                            g = load.wrk(r.gw.base, w.method, w.path, body, headers, c, args.duration, ids, terms)
                        g["cpu_us"] = gm.per_request(g["requests"])
                        return g

                    g = measure()
                    if not r.gw.alive():  # seen when something else on the machine kills it: restart, run again once
                        console.print(f"[red]the gateway ({r.via}) died during {w.key} c={c} (exit status "
                                      f"{r.gw.proc.returncode}): {r.gw.tail()[-300:]}; restarting[/red]")
                        out["restarts"].append({"size": size, "workload": w.key, "clients": c, "via": r.via,
                                                "status": r.gw.proc.returncode})
                        r.gw.start(tmp / f"gateway-{size}-{r.via}.log")
                        g = measure()
                    for pid, mb in r.gw.rss_mb().items():
                        rss_peak[r.via][pid] = max(rss_peak[r.via].get(pid, 0), mb)
                    with cpu.Meter(None, postmaster, r.bouncer_pid) as pm:
                        p = load.pgbench(r.db_url, script, variables, c, args.duration,
                                         "app_admin" if w.admin else "anonymous", r.protocol)
                    p["cpu_us"] = pm.per_request(p["requests"])
                    row = {"size": size, "workload": w.key, "title": w.title, "clients": c, "via": r.via,
                           "gateway": g, "pgbench": p, "ratio": g["rate"] / p["rate"] if p["rate"] else 0.0}
                    out["runs"].append(row)
                    console.print(report.line(row), highlight=False)
    for via, peak in rss_peak.items():
        out["rss_mb"][size if via == "direct" else f"{size} via {via}"] = {
            "total": round(sum(peak.values()), 1), "processes": len(peak),
            "max_process": round(max(peak.values(), default=0), 1)}
    if "W6" in args.workloads:
        out["bcrypt_ms"][size] = round(bcrypt_cost_ms(fx.admin_url), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="small,medium", help="small, medium, large (comma-separated)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk and per pgbench run")
    ap.add_argument("--clients", default="1,8,64", help="concurrent connections (comma-separated)")
    ap.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W1D")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("REFERRAL_WORKERS", "2")),
                    help="gateway worker processes")
    ap.add_argument("--pool", type=int, default=10, help="database connections per worker (PGRST_DB_POOL)")
    ap.add_argument("--via", default="direct",
                    help="the gateway's (and pgbench's) way to PostgreSQL: direct, pgbouncer (transaction pooling, "
                         "prepared statements off, pgbench -M extended), or direct,pgbouncer side by side")
    ap.add_argument("--keep", action="store_true", help="keep the bench cluster and databases")
    args = ap.parse_args()
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.clients = [int(c) for c in args.clients.split(",") if c]
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w]
    args.via = list(dict.fromkeys(v.strip().lower() for v in args.via.split(",") if v.strip()))
    if not args.via or set(args.via) - set(VIAS):
        sys.exit(f"--via: choose from {', '.join(VIAS)} (comma-separated)")
    unknown = set(args.sizes) - set(SIZES)
    if unknown:
        sys.exit(f"unknown size(s): {', '.join(sorted(unknown))}; choose from {', '.join(SIZES)}")
    ensure_wrk()
    out = report.new_results(args)
    bc = BenchCluster(keep=args.keep)
    bc.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            for size in args.sizes:
                run_size(bc, size, args, out, Path(tmp))
    finally:
        bc.stop()
    report.finish(out, console)


if __name__ == "__main__":
    main()
