// The operations dashboard: one more client of the PostgREST-style API. Sign in with /rpc/login, then
// every 15 s one POST /rpc/dashboard (all panels in one JSON document) and one GET /metrics (the API port
// serves it to an admin token only; the admin port serves it to Prometheus).
// The database refuses non-admins; the page only shows what it was given.

import { barChart, lineChart } from "./charts.js";
import { badge, empty, fill, h, millis, more, num, table, time, utcDay } from "./dom.js";
import * as metrics from "./metrics.js";
import { renderBackup, renderDatabase, renderHistory, renderJobs, renderService, renderStatus } from "./ops.js";

const API = new URL("../", location.href); // the page is served at <gateway>/dashboard/
const SESSION_KEY = "churnistic.dashboard.session";
const RENEW_BEFORE_S = 120;  // refresh the access token this long before it expires
const REFRESH_MS = 15000;
const EVENT_TYPES = ["offer_view", "offer_click", "referral_click"];

const $ = (sel) => document.querySelector(sel);
const state = { doc: null, scrape: null, service: null, window: "24h", range: "hour", busy: false, timer: null };

// --- API ----------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Read your own writes with read replicas (docs/scaling.md): the newest commit position a response gave is
// sent back with every later request, so no replica that has not replayed it answers.
let walPosition = null;

async function rpc(name, body, token) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (walPosition) headers["X-Referral-WAL-LSN"] = walPosition;
  const res = await fetch(new URL(`rpc/${name}`, API), { method: "POST", headers, body: JSON.stringify(body) });
  walPosition = res.headers.get("X-Referral-WAL-LSN") || walPosition;
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

// The first rows and the count; the link lists them all (active offers are public: no token needed).
function renderExpiring(expiring) {
  const rows = expiring.items;
  if (!rows.length) return fill("panel-expiring", empty("No active offer expires in the next 7 days."));
  const today = new Date().toISOString().slice(0, 10);
  const week = new Date(Date.now() + 7 * 86400000).toISOString().slice(0, 10);
  const href = new URL(`offers?status=eq.active&expires_on=gte.${today}&expires_on=lte.${week}`
    + "&order=expires_on,title&select=title,institution,offer_type,expires_on", API).href;
  fill("panel-expiring", table(["Offer", "Institution", "Expires", "Left"], rows.map((o) => [
    o.title, o.institution, utcDay(o.expires_on, { dateStyle: "medium" }),
    badge(o.days_left === 0 ? "today" : `${o.days_left} d`, o.days_left <= 2 ? "bad" : "warn")]), { class: "compact" }),
  more(rows.length, expiring.total, href));
}

// internal.referral_dashboard() (referral links) when installed; the key is null before.
function renderReferrals(r) {
  if (!r) return fill("panel-referrals", empty("Referral links are not available on this server."));
  const top = r.top_offers || [];
  fill("panel-referrals", h("div", { class: "tiles" },
    h("div", { class: "tile" }, h("div", { class: "tile-value" }, num(r.links)), h("div", { class: "tile-label" }, "Links")),
    h("div", { class: `tile ${r.moderation_queue > 0 ? "warn" : "ok"}` }, h("div", { class: "tile-value" }, num(r.moderation_queue)),
      h("div", { class: "tile-label" }, "Waiting for moderation"))),
  top.length ? table(["Offer", "Clicks"], top.slice(0, 5).map((o) => [o.title || o.offer_id, num(o.clicks ?? o.visits ?? o.count)]),
    { class: "compact" }) : empty("No referral traffic yet."));
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

function renderStatements(rows) {
  if (!rows.length) return fill("panel-statements", empty("No statements recorded yet."));
  fill("panel-statements", table(["Statement", "Calls", "Mean", "Total"], rows.map((q) => [
    h("code", { class: "sql", title: q.query }, q.query), num(q.calls), millis(q.mean_ms), millis(q.total_ms)])));
}

function render(doc, serviceMetrics) {
  const t = doc.status.thresholds;
  renderStatus(doc, serviceMetrics, null, t);
  renderService(serviceMetrics, t);
  renderBackup(doc.backup, t);
  renderHistory(doc.history, state.range);
  renderReferrals(doc.referrals);
  renderOffers(doc.offers);
  renderExpiring(doc.expiring_soon);
  renderViewed(doc.most_viewed);
  renderEvents(doc.events_per_day);
  renderDatabase(doc.database);
  renderStatements(doc.slowest_statements);
  renderJobs(doc.jobs);
  $("#board").removeAttribute("data-stale");
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
  Object.assign(state, { doc: null, scrape: null, service: null, timer: null });
  // drop every figure from the page, not only hide it
  document.querySelectorAll("#board section").forEach((p) => {
    p.querySelector(".body").replaceChildren();
    delete p.dataset.state;
  });
  $("#updated").textContent = "";
  $("#status").hidden = true;
  $("#board").removeAttribute("data-stale");
  $("#signin-error").textContent = message;
  showBoard(false);
}

// What the page says instead of a database error: a non-admin, an expired or revoked session or a forged
// token all end at the sign-in form with a sentence, never the server's message.
const REFUSED = "Access refused: this dashboard is for administrators. Sign in with an admin account.";
const ENDED = "Your session has ended. Please sign in again.";

function unreachable(err) {
  if (err instanceof ApiError) return `the dashboard's database query failed (HTTP ${err.status}: ${err.message})`;
  return `the service does not answer (${err.message})`;
}

// The document and the metrics are fetched apart: during an outage the metrics still come (5xx, db_up 0)
// while the document does not. The last document stays on screen, dimmed and marked stale, under a "Down".
async function refresh() {
  if (!session() || state.busy) return;
  state.busy = true;
  try {
    const token = await accessToken();
    const [doc, current] = await Promise.allSettled([rpc("dashboard", {}, token), scrape(token)]);
    const scraped = current.status === "fulfilled" ? current.value : null;
    const service = scraped ? metrics.compare(state.scrape, scraped) : null;
    const first = !state.scrape && scraped;
    if (scraped) state.scrape = scraped;
    state.service = service;
    if (doc.status === "rejected") throw doc.reason;
    state.doc = doc.value;
    showBoard(true);
    render(doc.value, service);
    if (first) setTimeout(refreshMetrics, 3000);  // a second scrape soon, so rates appear without waiting 15 s
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signOut(err.status === 403 ? REFUSED : ENDED);
    } else {
      showStale(unreachable(err));
    }
  } finally {
    state.busy = false;
  }
}

function showStale(reason) {
  const thresholds = state.doc ? state.doc.status.thresholds : {};
  showBoard(true);
  renderStatus(state.doc, state.service, reason, thresholds);
  if (state.service) renderService(state.service, thresholds);
  if (state.doc) {
    $("#board").dataset.stale = "true";
    $("#updated").textContent = `Stale: last good data from ${time(state.doc.generated_at)}; retrying every 15 s`;
  }
}

async function refreshMetrics() {
  if (!session() || !state.doc) return;
  const current = await scrape(await accessToken().catch(() => null));
  state.service = current ? metrics.compare(state.scrape, current) : null;
  renderService(state.service, state.doc.status.thresholds);
  renderStatus(state.doc, state.service, $("#board").dataset.stale ? "the database does not answer" : null,
    state.doc.status.thresholds);
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
    // the login's own messages are for people ("invalid email or password"); a 5xx is not
    $("#signin-error").textContent = err instanceof ApiError && err.status < 500 ? err.message
      : "The service cannot sign you in right now; try again in a minute.";
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

$("#panel-history .tabs").addEventListener("click", (event) => {
  const choice = event.target.closest("[data-range]");
  if (!choice || !state.doc) return;
  state.range = choice.dataset.range;
  renderHistory(state.doc.history, state.range);
});

// The chart is drawn at the panel's width: redraw it when that changes.
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => {
    if (state.doc) { renderEvents(state.doc.events_per_day); renderHistory(state.doc.history, state.range); }
  }, 200);
});

// Back on the tab after a while: refresh at once rather than at the next tick.
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });

if (session()) start(); else showBoard(false);
