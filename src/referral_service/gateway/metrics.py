"""Prometheus metrics of one gateway. With several worker processes, prometheus-client's multiprocess
mode (PROMETHEUS_MULTIPROC_DIR, set by the server before the workers start) sums them at scrape time."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("referral_http_requests", "HTTP requests by route, method and status class (2xx..5xx)",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("referral_http_request_duration_seconds", "Request duration",
                                 ["route", "method"], buckets=BUCKETS, registry=r)
        self.rate_limited = Counter("referral_rate_limited", "Requests refused with 429", ["limit"], registry=r)
        self.schema_reloads = Counter("referral_schema_cache_reloads", "Schema cache (re)loads", registry=r)
        self.pool = Gauge("referral_db_pool_connections", "Connection pool", ["state"], registry=r,
                          multiprocess_mode="livesum")
        self.db_up = Gauge("referral_db_up", "1 when the database answered the last scrape", registry=r,
                           multiprocess_mode="mostrecent")
        self.cron_failed = Gauge("referral_cron_failed_runs_total", "Failed pg_cron runs on record, per job",
                                 ["jobname"], registry=r, multiprocess_mode="mostrecent")
        self.ops = {
            name: Gauge(name, help_text, registry=r, multiprocess_mode="mostrecent")
            for name, help_text in [
                ("referral_backup_last_success_timestamp_seconds", "Unix time of the newest good backup"),
                ("referral_backup_last_verified_timestamp_seconds", "Unix time of the newest verified backup"),
                ("referral_backup_last_pitr_timestamp_seconds", "Unix time of the newest good pgBackRest backup"),
                ("referral_wal_archiving", "1 when PostgreSQL archives WAL (point-in-time recovery)"),
                ("referral_wal_last_archived_timestamp_seconds", "Unix time the newest WAL segment was archived"),
                ("referral_wal_archive_failures_total", "Failed WAL archive attempts since the server started"),
            ]
        }

    def set_pool(self, stats: dict[str, int]) -> None:
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        self.pool.labels("in_use").set(size - idle)
        self.pool.labels("idle").set(idle)
        self.pool.labels("waiting").set(stats.get("requests_waiting", 0))

    def set_ops(self, values: dict | None) -> None:
        """Gauges from the database's `internal.ops_metrics()`; None means the database did not answer."""
        self.db_up.set(0 if values is None else 1)
        for name, value in (values or {}).items():
            if name == "referral_cron_failed_runs_total":
                for job, failures in value.items():
                    self.cron_failed.labels(job).set(failures)
            elif name in self.ops:
                self.ops[name].set(float(value))

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
