// The operations dashboard: one more client of the PostgREST-style API. Sign in with /rpc/login, then
// every 15 s one POST /rpc/dashboard (all panels in one JSON document) and one GET /metrics (the API port
// serves it to an admin token only; the admin port serves it to Prometheus).
// The database refuses non-admins; the page only shows what it was given.

import { barChart, lineChart } from "./charts.js";
import * as metrics from "./metrics.js";

const API = new URL("../", location.href); // the page is served at <gateway>/dashboard/
const SESSION_KEY = "churnistic.dashboard.session";
const RENEW_BEFORE_S = 120;  // refresh the access token this long before it expires
const REFRESH_MS = 15000;
const EVENT_TYPES = ["offer_view", "offer_click", "referral_click"];

const $ = (sel) => document.querySelector(sel);
const state = { doc: null, scrape: null, window: "24h", busy: false, timer: null };

// --- DOM and formatting helpers ----------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

const num = (n) => (n === null || n === undefined ? "n/a" : Number(n).toLocaleString());
const time = (iso) => (iso ? new Date(iso).toLocaleString() : "never");
const utcDay = (day, opts = { month: "short", day: "numeric" }) =>
  new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { ...opts, timeZone: "UTC" });
const percent = (r, digits = 1) => (r === null || r === undefined ? "n/a" : `${(r * 100).toFixed(digits)} %`);
const millis = (ms) => (ms === null || ms === undefined ? "n/a" : ms < 1000 ? `${Number(ms).toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(1)} s`);
function bytes(n) {
  if (n === null || n === undefined) return "n/a";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const tile = (label, value, note) => h("div", { class: "tile" }, h("div", { class: "tile-value" }, value),
  h("div", { class: "tile-label" }, label), note ? h("div", { class: "tile-note" }, note) : null);
const badge = (text, kind) => h("span", { class: `badge ${kind}` }, text);
const empty = (text) => h("p", { class: "muted empty" }, text);

function table(headers, rows) {
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

function fill(id, ...content) {
  const panel = document.getElementById(id);
  panel.querySelector(".body").replaceChildren(...content.filter((c) => c !== null && c !== undefined));
  panel.dataset.state = "ready";
}

// --- API ----------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function rpc(name, body, token) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(new URL(`rpc/${name}`, API), { method: "POST", headers, body: JSON.stringify(body) });
  const payload = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, (payload && payload.message) || `HTTP ${res.status}`);
  return payload;
}

// The session from login/refresh: {access_token, refresh_token, expires_at} (a bare token string when the
// service hands out the seed's 24-hour tokens). Refresh tokens are single-use: one refresh at a time.
let renewing = null;

function session() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function keep(reply) {
  const value = typeof reply === "string" ? { access_token: reply } : reply;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

async function accessToken() {
  const current = session();
  if (!current) return null;
  const left = current.expires_at ? current.expires_at - Date.now() / 1000 : Infinity;
  if (left > RENEW_BEFORE_S || !current.refresh_token) return current.access_token;
  renewing = renewing || rpc("refresh", { refresh_token: current.refresh_token })
    .then((reply) => { keep(reply); return reply.access_token; })
    .finally(() => { renewing = null; });
  return renewing;  // a refused refresh (401) signs out like any 401
}

// Null when /metrics is missing or unreadable: the service panel then shows n/a.
async function scrape(token) {
  try {
    const res = await fetch(new URL("metrics", API), { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!res.ok) return null;
    const summary = metrics.summarize(metrics.parse(await res.text()), Date.now());
    return summary.present ? summary : null;
  } catch {
    return null;
  }
}

// --- panels -------------------------------------------------------------------------------------------

function renderService(m) {
  if (!m) {
    fill("panel-service", h("div", { class: "tiles" }, tile("Requests / s", "n/a"), tile("Errors (5xx)", "n/a"),
      tile("p99 latency", "n/a"), tile("Rate limited", "n/a")), empty("Gateway metrics are unavailable."));
    return;
  }
  const over = m.interval ? `over the last ${Math.round(m.interval)} s` : "since the gateway started";
  fill("panel-service", h("div", { class: "tiles" },
    tile("Requests / s", m.requestRate === null ? "…" : m.requestRate.toFixed(2), m.interval ? over : "needs two scrapes"),
    tile("Errors (5xx)", percent(m.errorRate, 2), over),
    tile("p99 latency", m.p99 === null ? "n/a" : millis(m.p99 * 1000), over),
    tile("Rate limited", num(m.limited), m.limitedDelta === null ? "total" : `+${num(m.limitedDelta)} ${over}`)));
}

function renderBackup(backup) {
  const latest = backup && backup.latest;
  if (!latest) {
    fill("panel-backup", empty(backup ? "No backup has run yet." : "Backup records are unavailable."));
    return;
  }
  const status = latest.ok ? badge("succeeded", "ok") : badge("failed", "bad");
  const verified = latest.verified ? badge("verified", "ok") : badge("not verified", "warn");
  fill("panel-backup", h("div", { class: "tiles" },
    tile("Latest backup", time(latest.finished_at), h("span", {}, status, " ", verified)),
    tile("Size", bytes(latest.size_bytes), latest.file),
    tile("Last verified", time(backup.latest_verified)),
    ...pitrTiles(backup)),
    latest.error ? h("p", { class: "error" }, latest.error) : null);
}

// Point-in-time recovery (migration 022): the newest pgBackRest backup and the newest archived WAL segment.
function pitrTiles(backup) {
  const wal = backup.wal;
  if (!wal) return [];
  const pitr = backup.latest_pitr;
  const failures = wal.failed_count ? badge(`${wal.failed_count} failed`, "bad") : null;
  return [
    tile("Last pgBackRest backup", pitr ? time(pitr.finished_at) : "none", pitr ? `${pitr.kind} ${pitr.file}` : ""),
    tile("Newest WAL archived", wal.archiving ? time(wal.last_archived_at) : "archiving off",
      h("span", {}, wal.last_archived_wal || "", " ", failures)),
  ];
}

function renderOffers(offers) {
  const items = (obj, order) => order.filter((k) => k in obj).concat(Object.keys(obj).filter((k) => !order.includes(k)))
    .map((k) => ({ label: k.replace("_", " "), value: obj[k] }));
  fill("panel-offers",
    h("p", { class: "muted" }, `${num(offers.total)} offers`),
    h("h3", {}, "By status"),
    barChart(items(offers.by_status, ["active", "draft", "expired", "archived"]), { title: "Offers by status" }),
    h("h3", {}, "By type"),
    barChart(items(offers.by_type, ["bank_account", "credit_card", "brokerage"]), { title: "Offers by type" }));
}

function renderExpiring(rows) {
  if (!rows.length) return fill("panel-expiring", empty("No active offer expires in the next 7 days."));
  fill("panel-expiring", table(["Offer", "Institution", "Expires", "Days left"], rows.map((o) => [
    o.title, o.institution, utcDay(o.expires_on, { dateStyle: "medium" }),
    badge(o.days_left === 0 ? "today" : `${o.days_left} d`, o.days_left <= 2 ? "bad" : "warn")])));
}

function renderViewed(mostViewed) {
  document.querySelectorAll("#panel-viewed [data-window]").forEach((b) =>
    b.setAttribute("aria-selected", String(b.dataset.window === state.window)));
  const rows = mostViewed[state.window] || [];
  if (!rows.length) return fill("panel-viewed", empty("No views in this period."));
  fill("panel-viewed", table(["#", "Offer", "Institution", "Views"],
    rows.map((o, i) => [String(i + 1), o.title, o.institution, num(o.views)])));
}

function renderEvents(days) {
  const labels = days.map((d) => utcDay(d.day));
  const series = [{ name: "all events", values: days.map((d) => d.total) }].concat(
    EVENT_TYPES.map((t) => ({ name: t.replace("_", " "), values: days.map((d) => d.by_type[t] || 0) })));
  const legend = h("ul", { class: "legend" }, series.map((s, k) =>
    h("li", {}, h("span", { class: `swatch s${k}` }), `${s.name}: ${num(s.values.reduce((a, b) => a + b, 0))}`)));
  const width = Math.max(300, document.querySelector("#panel-events .body").clientWidth || 640);
  fill("panel-events", lineChart(labels, series, { title: "Analytics events per day", width }), legend);
}

function renderDatabase(db) {
  const xacts = db.commits + db.rollbacks;
  fill("panel-database", h("div", { class: "tiles" },
    tile("Cache hit ratio", percent(db.cache_hit_ratio, 2)),
    tile("Connections", `${num(db.connections)} / ${num(db.max_connections)}`),
    tile("Commits", num(db.commits)),
    tile("Rollbacks", num(db.rollbacks), xacts ? `${percent(db.rollbacks / xacts)} of transactions` : null),
    tile("Size", bytes(db.size_bytes), db.name)));
}

function renderStatements(rows) {
  if (!rows.length) return fill("panel-statements", empty("No statements recorded yet."));
  fill("panel-statements", table(["Statement", "Calls", "Mean", "Total"], rows.map((q) => [
    h("code", { class: "sql", title: q.query }, q.query), num(q.calls), millis(q.mean_ms), millis(q.total_ms)])));
}

function renderJobs(jobs) {
  if (!jobs.length) return fill("panel-jobs", empty("No scheduled jobs."));
  const status = (run) => {
    if (!run) return badge("never run", "muted");
    const kind = { succeeded: "ok", failed: "bad" }[run.status] || "warn";
    const b = badge(run.status, kind);
    if (run.message) b.title = run.message;
    return b;
  };
  fill("panel-jobs", table(["Job", "Schedule", "Last run", "Status", "Duration"], jobs.map((j) => [
    h("span", {}, j.name, j.active ? null : badge("paused", "muted")), h("code", {}, j.schedule),
    time(j.last_run && j.last_run.start_time), status(j.last_run), millis(j.last_run && j.last_run.duration_ms)])));
}

function render(doc, serviceMetrics) {
  renderService(serviceMetrics);
  renderBackup(doc.backup);
  renderOffers(doc.offers);
  renderExpiring(doc.expiring_soon);
  renderViewed(doc.most_viewed);
  renderEvents(doc.events_per_day);
  renderDatabase(doc.database);
  renderStatements(doc.slowest_statements);
  renderJobs(doc.jobs);
  $("#updated").textContent = `Updated ${time(doc.generated_at)}` +
    (doc.rollups_as_of ? ` · rollups as of ${time(doc.rollups_as_of)}` : "");
}

// --- session and refresh ------------------------------------------------------------------------------

function showBoard(signedIn) {
  $("#signin").hidden = signedIn;
  $("#board").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
}

function signOut(message = "") {
  const ended = session();
  if (ended && !message) rpc("logout", {}, ended.access_token).catch(() => {});  // end it on the server too
  sessionStorage.removeItem(SESSION_KEY);
  clearInterval(state.timer);
  Object.assign(state, { doc: null, scrape: null, timer: null });
  // drop every figure from the page, not only hide it
  document.querySelectorAll("#board section").forEach((p) => {
    p.querySelector(".body").replaceChildren();
    delete p.dataset.state;
  });
  $("#updated").textContent = "";
  $("#banner").hidden = true;
  $("#signin-error").textContent = message;
  showBoard(false);
}

async function refresh() {
  if (!session() || state.busy) return;
  state.busy = true;
  try {
    const token = await accessToken();
    const [doc, current] = await Promise.all([rpc("dashboard", {}, token), scrape(token)]);
    const service = current ? metrics.compare(state.scrape, current) : null;
    const first = !state.scrape && current;
    state.scrape = current;
    state.doc = doc;
    showBoard(true);
    render(doc, service);
    $("#banner").hidden = true;
    if (first) setTimeout(refreshMetrics, 3000);  // a second scrape soon, so rates appear without waiting 15 s
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signOut(err.status === 403 ? `Access refused: ${err.message}` : `Please sign in again (${err.message}).`);
    } else {
      $("#banner").textContent = `Refresh failed: ${err.message}. Showing the last data; retrying.`;
      $("#banner").hidden = false;
    }
  } finally {
    state.busy = false;
  }
}

async function refreshMetrics() {
  if (!session() || !state.doc) return;
  const current = await scrape(await accessToken().catch(() => null));
  renderService(current ? metrics.compare(state.scrape, current) : null);
  if (current) state.scrape = current;
}

function start() {
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  return refresh();
}

$("#signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.target.querySelector("button");
  button.disabled = true;
  $("#signin-error").textContent = "";
  try {
    keep(await rpc("login", { email: $("#email").value, password: $("#password").value }));
    $("#password").value = "";
    await start();
  } catch (err) {
    $("#signin-error").textContent = err instanceof ApiError ? err.message : `Cannot reach the service: ${err.message}`;
  } finally {
    button.disabled = false;
  }
});

$("#signout").addEventListener("click", () => signOut());

$("#panel-viewed .tabs").addEventListener("click", (event) => {
  const choice = event.target.closest("[data-window]");
  if (!choice || !state.doc) return;
  state.window = choice.dataset.window;
  renderViewed(state.doc.most_viewed);
});

// The chart is drawn at the panel's width: redraw it when that changes.
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { if (state.doc) renderEvents(state.doc.events_per_day); }, 200);
});

// Back on the tab after a while: refresh at once rather than at the next tick.
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });

if (session()) start(); else showBoard(false);
