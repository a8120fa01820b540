// The operational panels of the first screen: status, service, database, jobs, backups, and the history.

import { lineChart } from "./charts.js";
import { age, badge, bytes, empty, fill, h, millis, more, num, percent, table, tile, time } from "./dom.js";
import { evaluate, grade } from "./status.js";

const JOBS_SHOWN = 8;
const LABEL = { healthy: "Healthy", degraded: "Degraded", down: "Down" };

export function renderStatus(doc, service, failure, thresholds) {
  const { level, reasons } = evaluate(doc, service, failure, thresholds);
  const box = document.getElementById("status");
  box.dataset.level = level;
  box.hidden = false;
  document.getElementById("status-level").textContent = LABEL[level];
  document.getElementById("status-reasons").replaceChildren(...(reasons.length
    ? reasons.map((r) => h("li", { "data-rule": r.rule }, r.message))
    : [h("li", {}, "every rule passes: database reachable, errors, latency, pool, jobs, backups")]));
  return level;
}

export function renderService(m, t = {}) {
  if (!m) {
    fill("panel-service", h("div", { class: "tiles" }, tile("Requests / s", "n/a"), tile("Errors (5xx)", "n/a"),
      tile("p99 latency", "n/a"), tile("Rate limited", "n/a")), empty("Gateway metrics are unavailable."));
    return;
  }
  const over = m.interval ? `over the last ${Math.round(m.interval)} s` : "since the gateway started";
  fill("panel-service", h("div", { class: "tiles" },
    tile("Requests / s", m.requestRate === null ? "…" : m.requestRate.toFixed(2), m.interval ? over : "needs two scrapes"),
    // coloured over an interval only, as the rules judge them (a lifetime figure is history, not state)
    tile("Errors (5xx)", percent(m.errorRate, 2), over, m.interval ? grade(m.errorRate, t.error_ratio) : "muted"),
    tile("p99 latency", m.p99 === null ? "n/a" : millis(m.p99 * 1000), over, m.interval ? grade(m.p99, t.p99_seconds) : "muted"),
    tile("Rate limited", num(m.limited), m.limitedDelta === null ? "total" : `+${num(m.limitedDelta)} ${over}`,
      m.limitedDelta > 0 ? "warn" : "ok"),
    tile("Waiting for a connection", num(m.poolWaiting), "requests in the pool's queue",
      m.poolWaiting > (t.pool_waiting ?? 0) ? "bad" : "ok")));
}

export function renderDatabase(db) {
  const s = db.by_state || {};
  const dead = db.dead_tuples || [];
  fill("panel-database", h("div", { class: "tiles" },
    tile("Connections", `${num(db.connections)} / ${num(db.max_connections)}`,
      `${num(s.active)} active · ${num(s.idle)} idle · ${num(s.idle_in_transaction)} idle in transaction`,
      grade(db.connections, db.max_connections, { warnAt: 0.7 })),
    tile("Longest transaction", s.longest_xact_s === null || s.longest_xact_s === undefined ? "none" : `${num(s.longest_xact_s)} s`,
      s.longest_xact_state || "", grade(s.longest_xact_s, 300, { warnAt: 0.2 })),
    tile("Waiting locks", num(s.waiting_locks), null, s.waiting_locks > 0 ? "bad" : "ok"),
    tile("Cache hit ratio", percent(db.cache_hit_ratio, 2), null,
      db.cache_hit_ratio === null ? "muted" : db.cache_hit_ratio < 0.95 ? "bad" : db.cache_hit_ratio < 0.99 ? "warn" : "ok"),
    tile("Transactions / s", db.tps === null || db.tps === undefined ? "n/a" : num(db.tps), "last minute"),
    tile("Size", bytes(db.size_bytes), db.name)),
    dead.length ? table(["Dead tuples", "", "Live"], dead.slice(0, 3).map((d) => [h("code", {}, d.table), num(d.dead), num(d.live)]),
      { class: "compact" }) : null);
}

let allJobs = false;  // the operator asked for the whole list ("and N more")

export function renderJobs(jobs) {
  if (!jobs.length) return fill("panel-jobs", empty("No scheduled jobs."));
  // failures first, then the most recent runs, never-run jobs last: a red row is never below the cap
  const started = (j) => (j.last_run ? new Date(j.last_run.start_time).getTime() : 0);
  const ordered = [...jobs].sort((a, b) => failed(b) - failed(a) || started(b) - started(a) || a.name.localeCompare(b.name));
  const status = (run) => {
    if (!run) return badge("never run", "muted");
    const b = badge(run.status, { succeeded: "ok", failed: "bad" }[run.status] || "warn");
    if (run.message) b.title = run.message;
    return b;
  };
  const rows = allJobs ? ordered : ordered.slice(0, JOBS_SHOWN);
  const link = more(rows.length, jobs.length, "#panel-jobs", "show all jobs");
  if (link) link.querySelector("a").addEventListener("click", (e) => { e.preventDefault(); allJobs = true; renderJobs(jobs); });
  fill("panel-jobs", table(["Job", "Last run", "Status", "Took"], rows.map((j) => [
    h("span", { title: j.schedule }, j.name, j.active ? null : badge("paused", "muted"),
      j.failed_24h ? badge(`${j.failed_24h} failed in 24 h`, "bad") : null),
    age(j.last_run && j.last_run.start_time), status(j.last_run), millis(j.last_run && j.last_run.duration_ms)]),
  { class: "compact" }), link);
  document.querySelectorAll("#panel-jobs tbody tr").forEach((tr, i) => {
    if (failed(rows[i])) tr.classList.add("failed");
  });
}

const failed = (j) => (j.last_run && j.last_run.status === "failed" ? 1 : 0);

export function renderBackup(backup, t = {}) {
  const limit = t.backup_max_age_seconds;
  const seconds = (iso) => (iso ? (Date.now() - new Date(iso).getTime()) / 1000 : Infinity);
  const latest = backup.latest;
  const wal = backup.wal || {};
  const pitr = backup.latest_pitr;
  fill("panel-backup", h("div", { class: "tiles" },
    tile("Newest good backup", age(backup.latest_good), backup.latest_good ? time(backup.latest_good) : "none on record",
      grade(seconds(backup.latest_good), limit, { warnAt: 0.75 })),
    tile("Newest verified", age(backup.latest_verified), null, grade(seconds(backup.latest_verified), limit * 2)),
    tile("Last pgBackRest", pitr ? age(pitr.finished_at) : "none", pitr ? pitr.kind : ""),
    tile("WAL archived", wal.archiving ? age(wal.last_archived_at) : "archiving off", wal.failed_count ? `${wal.failed_count} failed` : "",
      wal.archiving ? grade(seconds(wal.last_archived_at), t.wal_max_age_seconds) : "muted")),
    latest ? h("p", { class: "muted small" }, "Latest run: ", latest.ok ? badge("succeeded", "ok") : badge("failed", "bad"),
      " ", latest.verified ? badge("verified", "ok") : badge("not verified", "warn"), ` ${latest.file} · ${bytes(latest.size_bytes)}`) : null,
    latest && latest.error ? h("p", { class: "error" }, latest.error) : null);
}

const SERIES = [
  { key: "tps", name: "transactions / s" },
  { key: "connections", name: "connections" },
  { key: "waiting_locks", name: "waiting locks" },
];

export function renderHistory(history, range) {
  document.querySelectorAll("#panel-history [data-range]").forEach((b) =>
    b.setAttribute("aria-selected", String(b.dataset.range === range)));
  const points = (history && history[range]) || [];
  if (points.length < 2) return fill("panel-history", empty("Not enough samples yet (one a minute)."));
  const labels = points.map((p) => new Date(p.t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  const width = Math.max(300, document.querySelector("#panel-history .body").clientWidth || 640);
  const charts = SERIES.map((s, k) => {
    const values = points.map((p) => Number(p[s.key]) || 0);
    return h("figure", { class: "spark" }, h("figcaption", {}, `${s.name}: ${num(values[values.length - 1])}`),
      lineChart(labels, [{ name: s.name, values }], { title: s.name, width: Math.floor(width / 3) - 8, height: 120, series: k }));
  });
  fill("panel-history", h("div", { class: "sparks" }, charts));
}
