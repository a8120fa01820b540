// One overall status from explicit rules. The database-side checks (cron, backup age, WAL archive age,
// replica lag) come evaluated in the dashboard document; the service-side ones (5xx share, p99, pool
// waiting) are evaluated here from /metrics with the document's thresholds, the numbers the Prometheus
// alerts use (internal.status_thresholds(), docker/prometheus/alerts.yml).

export const LEVELS = ["healthy", "degraded", "down"];

// Colour of one figure against its threshold: "ok", "warn" (at half of it) or "bad".
export function grade(value, limit, { warnAt = 0.5 } = {}) {
  if (value === null || value === undefined || limit === null || limit === undefined) return "muted";
  if (value > limit) return "bad";
  return limit > 0 && value > limit * warnAt ? "warn" : "ok";
}

// failure: why the document could not be read (null when it was); service: metrics.compare() or null.
export function evaluate(doc, service, failure, thresholds) {
  const reasons = [];
  if (failure) reasons.push({ rule: "database", level: "down", message: failure });
  if (service && service.dbUp === 0 && !failure) {
    reasons.push({ rule: "database", level: "down", message: "the gateway cannot reach the database" });
  }
  const t = thresholds || {};
  if (service && service.interval) {
    if (service.errorRate !== null && service.errorRate > t.error_ratio && service.requestRate > t.error_min_rps) {
      reasons.push({ rule: "errors", level: "degraded",
        message: `${(service.errorRate * 100).toFixed(1)} % of requests fail with 5xx (limit ${t.error_ratio * 100} %)` });
    }
    if (service.p99 !== null && service.p99 > t.p99_seconds) {
      reasons.push({ rule: "latency", level: "degraded",
        message: `p99 latency ${Math.round(service.p99 * 1000)} ms (limit ${t.p99_seconds * 1000} ms)` });
    }
  }
  if (service && service.poolWaiting > t.pool_waiting) {
    reasons.push({ rule: "pool", level: "degraded", message: `${service.poolWaiting} requests wait for a database connection` });
  }
  if (doc && !failure) {
    for (const c of doc.status.checks) {
      if (c.state !== "ok") reasons.push({ rule: c.rule, level: "degraded", message: c.message });
    }
  }
  const level = reasons.reduce((worst, r) => (LEVELS.indexOf(r.level) > LEVELS.indexOf(worst) ? r.level : worst),
    "healthy");
  return { level, reasons };
}
