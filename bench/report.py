"""Results: live lines, the final table, targets, JSON and a PNG chart under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("results")
GROWTH = ("W1", "W2", "W3", "W7", "W1D")
RATIO_TARGETS = {"W1": 0.6, "W2": 0.3, "W4": 0.6, "W5": 0.5}  # issue 17, at 64 clients


def new_results(args) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_before": os.getloadavg()},
            "settings": {"sizes": args.sizes, "duration_s": args.duration, "clients": args.clients,
                         "workloads": args.workloads, "gateway_workers": args.workers, "pool": args.pool,
                         "via": getattr(args, "via", ["direct"])},
            "runs": [], "restarts": [], "rss_mb": {}, "bcrypt_ms": {}, "scripts": {}}


def via(row: dict) -> str:
    """The route of a run: "direct" (results from before the field existed too) or "pgbouncer"."""
    return row.get("via", "direct")


def line(row: dict) -> str:
    g, p = row["gateway"], row["pgbench"]
    errs = f"  [red]errors gw={g['errors']} pg={p['errors']}[/red]" if g["errors"] or p["errors"] else ""
    gc, pc = g.get("cpu_us", {}), p.get("cpu_us", {})
    bouncer = (f" | pgbouncer µs/req gw {gc.get('bouncer', 0):.0f} pgbench {pc.get('bouncer', 0):.0f}"
               if "bouncer" in gc else "")
    return (f"  {row['workload']} c={row['clients']:<3} {via(row):<9} gateway {g['rate']:8.0f}/s p50 {g['p50_ms']:6.2f} "
            f"p99 {g['p99_ms']:7.2f} ms | pgbench {p['rate']:8.0f}/s p50 {p['p50_ms']:6.2f} p99 "
            f"{p['p99_ms']:7.2f} ms | ratio {row['ratio']:.2f} | CPU µs/req gw {gc.get('gateway', 0):.0f} "
            f"pg {gc.get('pg', 0):.0f} wrk {gc.get('load', 0):.0f} | pgbench's pg {pc.get('pg', 0):.0f} "
            f"pgbench {pc.get('load', 0):.0f}{bouncer}{errs}")


def growth(runs: list[dict]) -> list[dict]:
    """W1–W3, W7 and W1D latency at the largest size divided by the smallest, per client count and route."""
    sizes = list(dict.fromkeys(r["size"] for r in runs))
    if len(sizes) < 2:
        return []
    out = []
    for r0 in (r for r in runs if r["size"] == sizes[0] and r["workload"] in GROWTH):
        r1 = next((r for r in runs if r["size"] == sizes[-1] and r["workload"] == r0["workload"]
                   and r["clients"] == r0["clients"] and via(r) == via(r0)), None)
        if r1:
            out.append({"workload": r0["workload"], "clients": r0["clients"], "via": via(r0),
                        "from": sizes[0], "to": sizes[-1],
                        "p50_x": r1["gateway"]["p50_ms"] / r0["gateway"]["p50_ms"],
                        "p99_x": r1["gateway"]["p99_ms"] / r0["gateway"]["p99_ms"]})
    return out


def targets(out: dict) -> list[tuple[str, bool | None, str]]:
    """Issue 17's targets, on the direct route when it ran (the PgBouncer route is compared with it in
    `via_effect`), else on the PgBouncer route."""
    route = "direct" if any(via(r) == "direct" for r in out["runs"]) or not out["runs"] else via(out["runs"][0])
    runs = [r for r in out["runs"] if via(r) == route]

    def pick(w: str, c: int, size: str | None = None) -> list[dict]:
        return [r for r in runs if r["workload"] == w and r["clients"] == c and (size is None or r["size"] == size)]

    res = []
    for w, floor in RATIO_TARGETS.items():
        rows = pick(w, 64)
        res.append((f"{w} ratio ≥ {floor} at 64 clients", all(r["ratio"] >= floor for r in rows) if rows else None,
                    ", ".join(f"{r['size']} {r['ratio']:.2f}" for r in rows)))
    for w in ("W1", "W2"):
        rows = pick(w, 64)
        res.append((f"{w} p99 ≤ 25 ms at 64 clients", all(r["gateway"]["p99_ms"] <= 25 for r in rows) if rows else None,
                    ", ".join(f"{r['size']} {r['gateway']['p99_ms']:.1f} ms" for r in rows)))
    rows = [r for r in pick("W2", 64) if r["gateway"].get("cpu_us")]
    res.append(("W2 gateway CPU per request ≤ PostgreSQL's (64 clients)",
                all(r["gateway"]["cpu_us"]["gateway"] <= r["gateway"]["cpu_us"]["pg"] for r in rows) if rows else None,
                ", ".join(f"{r['size']} {r['gateway']['cpu_us']['gateway']:.0f} vs {r['gateway']['cpu_us']['pg']:.0f} µs"
                          for r in rows)))
    for w, ms, what in (("W3", 20, "1M offers"), ("W7", 50, "10M events")):
        rows = [r for r in runs if r["workload"] == w and r["size"] == "large"]
        res.append((f"{w} p50 ≤ {ms} ms at {what} (every client count)",
                    all(r["gateway"]["p50_ms"] <= ms for r in rows) if rows else None,
                    ", ".join(f"c={r['clients']} {r['gateway']['p50_ms']:.1f} ms" for r in rows)))
    mem = {s: m for s, m in out["rss_mb"].items() if (" via " not in s) == (route == "direct")}
    res.append(("gateway ≤ 100 MB per worker process", all(m["max_process"] <= 100 for m in mem.values()) if mem
                else None, ", ".join(f"{s} max {m['max_process']} MB ({m['processes']} processes, {m['total']} MB)"
                                     for s, m in mem.items())))
    return res


def via_effect(runs: list[dict]) -> list[dict]:
    """Per size, workload and client count measured both ways: the PgBouncer route against the direct one."""
    out = []
    for d in (r for r in runs if via(r) == "direct"):
        b = next((r for r in runs if via(r) == "pgbouncer" and r["size"] == d["size"]
                  and r["workload"] == d["workload"] and r["clients"] == d["clients"]), None)
        if b is None:
            continue
        dg, bg = d["gateway"], b["gateway"]
        dc, bc = dg.get("cpu_us", {}), bg.get("cpu_us", {})
        out.append({"size": d["size"], "workload": d["workload"], "clients": d["clients"],
                    "gateway_rate_x": bg["rate"] / dg["rate"] if dg["rate"] else 0.0,
                    "pgbench_rate_x": b["pgbench"]["rate"] / d["pgbench"]["rate"] if d["pgbench"]["rate"] else 0.0,
                    "gateway_p99_ms": [round(dg["p99_ms"], 2), round(bg["p99_ms"], 2)],
                    "gateway_cpu_us": [dc.get("gateway", 0), bc.get("gateway", 0)],
                    "pg_cpu_us": [dc.get("pg", 0), bc.get("pg", 0)],
                    "bouncer_cpu_us": bc.get("bouncer", 0)})
    return out


def finish(out: dict, console: Console) -> None:
    out["growth"] = growth(out["runs"])
    out["via_effect"] = via_effect(out["runs"])
    out["targets"] = [{"target": t, "met": ok, "measured": m} for t, ok, m in targets(out)]
    out["machine"]["load_after"] = os.getloadavg()
    table = Table(title="gateway (wrk) vs database ceiling (pgbench, same SQL)")
    for col in ("size", "workload", "via", "clients", "gateway req/s", "pgbench tps", "ratio", "gw p50 ms",
                "gw p99 ms", "pg p50 ms", "pg p99 ms", "errors", "CPU µs gw", "pg (gw)", "wrk", "pg (pgb)",
                "pgbench", "bouncer gw/pgb"):
        table.add_column(col, justify="right" if col not in ("size", "workload", "via") else "left")
    for r in out["runs"]:
        g, p = r["gateway"], r["pgbench"]
        table.add_row(r["size"], r["workload"], via(r), str(r["clients"]), f"{g['rate']:.0f}",
                      f"{p['rate']:.0f}", f"{r['ratio']:.2f}", f"{g['p50_ms']:.2f}", f"{g['p99_ms']:.2f}",
                      f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}", f"{g['errors']}/{p['errors']}",
                      *_cpu_cells(g, p))
    console.print(table)
    titles = {r["workload"]: r["title"] for r in out["runs"]}
    console.print("  ".join(f"{k}: {v}" for k, v in titles.items()))
    for s, m in out["rss_mb"].items():
        console.print(f"gateway memory ({s}): {m['total']} MB in {m['processes']} processes, "
                      f"largest {m['max_process']} MB")
    for s, ms in out["bcrypt_ms"].items():
        console.print(f"bcrypt cost 10 ({s}): {ms} ms per hash in PostgreSQL → at most "
                      f"{1000 * (os.cpu_count() or 1) / ms:.0f} logins/s on {os.cpu_count()} cores")
    for g in out["growth"]:
        route = "" if g["via"] == "direct" else f" via {g['via']}"
        console.print(f"{g['workload']} c={g['clients']}{route}: {g['from']}→{g['to']} p50 ×{g['p50_x']:.2f}, "
                      f"p99 ×{g['p99_x']:.2f}")
    for e in out["via_effect"]:
        console.print(f"via pgbouncer, {e['size']} {e['workload']} c={e['clients']}: gateway req/s "
                      f"×{e['gateway_rate_x']:.2f}, pgbench tps ×{e['pgbench_rate_x']:.2f}, gateway p99 "
                      f"{e['gateway_p99_ms'][0]:.1f} → {e['gateway_p99_ms'][1]:.1f} ms, CPU µs/req gw "
                      f"{e['gateway_cpu_us'][0]:.0f} → {e['gateway_cpu_us'][1]:.0f}, pg {e['pg_cpu_us'][0]:.0f} → "
                      f"{e['pg_cpu_us'][1]:.0f}, + pgbouncer {e['bouncer_cpu_us']:.0f}")
    for t in out["targets"]:
        mark = {True: "[green]met[/green]", False: "[red]not met[/red]", None: "not measured"}[t["met"]]
        console.print(f"{mark}  {t['target']}: {t['measured']}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(out, indent=2))
    try:
        chart(out, RESULTS / f"{stamp}.png")
        console.print(f"wrote {RESULTS / stamp}.json and .png")
    except ImportError:  # matplotlib comes with the [test] extra; the numbers matter more than the picture
        console.print(f"wrote {RESULTS / stamp}.json (no chart: matplotlib is not installed)")


def _cpu_cells(g: dict, p: dict) -> list[str]:
    gc, pc = g.get("cpu_us", {}), p.get("cpu_us", {})
    bouncer = f"{gc['bouncer']:.0f}/{pc.get('bouncer', 0):.0f}" if "bouncer" in gc else "-"
    return [f"{gc.get('gateway', 0):.0f}", f"{gc.get('pg', 0):.0f}", f"{gc.get('load', 0):.0f}",
            f"{pc.get('pg', 0):.0f}", f"{pc.get('load', 0):.0f}", bouncer]


def chart(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(r["size"] for r in out["runs"]))
    if not sizes:
        return
    fig, axes = plt.subplots(len(sizes), 2, figsize=(16, 4.5 * len(sizes)), squeeze=False)
    for row, size in zip(axes, sizes):
        runs = [r for r in out["runs"] if r["size"] == size]
        labels = [f"{r['workload']}\nc={r['clients']}" + ("\nPgB" if via(r) == "pgbouncer" else "") for r in runs]
        x = range(len(runs))
        ax = row[0]
        bars = [ax.bar([i - 0.2 for i in x], [r["gateway"]["rate"] for r in runs], 0.4, label="gateway req/s (wrk)"),
                ax.bar([i + 0.2 for i in x], [r["pgbench"]["rate"] for r in runs], 0.4, label="pgbench tps (same SQL)")]
        ax.set_yscale("log")
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set_title(f"{size}: throughput" + ("; hatched: via PgBouncer" if any(via(r) == "pgbouncer" for r in runs)
                                                else ""))
        ax.legend(fontsize=8)
        ax2 = row[1]
        bars += [ax2.bar([i - 0.2 for i in x], [r["gateway"]["p99_ms"] for r in runs], 0.4, label="gateway p99 ms"),
                 ax2.bar([i + 0.2 for i in x], [r["pgbench"]["p99_ms"] for r in runs], 0.4, label="pgbench p99 ms")]
        for container in bars:  # the PgBouncer route (--via): hatched, "PgB" under the bars
            for patch, r in zip(container.patches, runs):
                if via(r) == "pgbouncer":
                    patch.set_hatch("//")
        ax2.set_yscale("log")
        ax2.set_xticks(list(x), labels, fontsize=7)
        ax2.set_title(f"{size}: p99 latency (ratio gateway/pgbench throughput above bars)")
        for i, r in zip(x, runs):
            ax2.annotate(f"{r['ratio']:.2f}", (i, max(r["gateway"]["p99_ms"], r["pgbench"]["p99_ms"])),
                         ha="center", va="bottom", fontsize=7)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
