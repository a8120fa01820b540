// The gateway's Prometheus text exposition → request rate, error rate, p99, rate-limited requests.
// Rates come from the difference between two successive scrapes, as Prometheus' rate() would.

const REQUESTS = "referral_http_requests_total";
const BUCKETS = "referral_http_request_duration_seconds_bucket";
const LIMITED = "referral_rate_limited_total";
const POOL = "referral_db_pool_connections";
const DB_UP = "referral_db_up";
// The dashboard's own calls are left out of its figures (by route, which the gateway resolves: a client cannot
// move its requests to another route by a header); the alert rules leave out the same route.
export const OWN_ROUTES = new Set(["/rpc/dashboard", "/dashboard"]);

// `name{a="x",b="y"} value [timestamp]` lines; comments and malformed lines are skipped.
export function parse(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (!raw || raw.startsWith("#")) continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    const value = Number(m[3]);  // Number("+Inf") is NaN; parseFloat handles it
    samples.push({ name: m[1], labels, value: Number.isNaN(value) ? parseFloat(m[3]) : value });
  }
  return samples;
}

// The counters the dashboard needs, summed over all label sets.
export function summarize(all, at) {
  const samples = all.filter((s) => !OWN_ROUTES.has(s.labels.route));
  const sum = (pred) => samples.filter(pred).reduce((acc, s) => acc + s.value, 0);
  const buckets = new Map();
  const dbUp = samples.find((s) => s.name === DB_UP);
  for (const s of samples) {
    if (s.name !== BUCKETS) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  return {
    at,
    present: samples.some((s) => s.name === REQUESTS || s.name === BUCKETS),
    requests: sum((s) => s.name === REQUESTS),
    errors: sum((s) => s.name === REQUESTS && String(s.labels.status || "").startsWith("5")),  // status class "5xx"
    limited: sum((s) => s.name === LIMITED),
    poolWaiting: sum((s) => s.name === POOL && s.labels.state === "waiting"),
    dbUp: dbUp ? dbUp.value : null,
    buckets,
  };
}

// Cumulative bucket counts → the q-quantile, interpolated linearly inside its bucket.
export function quantile(q, buckets) {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  if (!bounds.length) return null;
  const total = buckets.get(bounds[bounds.length - 1]);
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const le of bounds) {
    const count = buckets.get(le);
    if (count >= rank) {
      if (le === Infinity) return lower;  // beyond the largest finite bucket: its bound is all we know
      return lower + (le - lower) * ((rank - below) / Math.max(count - below, 1e-9));
    }
    lower = le;
    below = count;
  }
  return lower;
}

// Two summaries → figures over the interval between them; lifetime figures when there is only one
// (or the gateway restarted and its counters went back to zero).
export function compare(prev, curr) {
  const usable = prev && prev.present && curr.requests >= prev.requests && curr.at > prev.at;
  if (!usable) {
    return { interval: null, requestRate: null, errorRate: curr.requests ? curr.errors / curr.requests : null,
      p99: quantile(0.99, curr.buckets), limited: curr.limited, limitedDelta: null, requests: curr.requests,
      poolWaiting: curr.poolWaiting, dbUp: curr.dbUp };
  }
  const seconds = (curr.at - prev.at) / 1000;
  const requests = curr.requests - prev.requests;
  const delta = new Map([...curr.buckets].map(([le, c]) => [le, c - (prev.buckets.get(le) || 0)]));
  return {
    interval: seconds,
    requestRate: requests / seconds,
    errorRate: requests > 0 ? (curr.errors - prev.errors) / requests : null,
    p99: quantile(0.99, delta) ?? quantile(0.99, curr.buckets),
    limited: curr.limited,
    limitedDelta: curr.limited - prev.limited,
    requests: curr.requests,
    poolWaiting: curr.poolWaiting,
    dbUp: curr.dbUp,
  };
}
