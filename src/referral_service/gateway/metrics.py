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
        # read replicas (routing.py): per replica as host:port
        self.replica_up = Gauge("referral_read_replica_up", "1 when the replica passed its last health check",
                                ["replica"], registry=r, multiprocess_mode="mostrecent")
        self.replica_lag = Gauge("referral_read_replica_lag_seconds", "Lag behind the primary at the gateway's last check",
                                 ["replica"], registry=r, multiprocess_mode="mostrecent")
        self.db_reads = Counter("referral_db_reads", "Routable reads by where they ran (a replica, or primary)",
                                ["target"], registry=r)
        # shared limits (ratelimit_redis.py): 0 while Redis is unreachable and this host limits on its own
        self.ratelimit_shared = Gauge("referral_ratelimit_shared_store_up", "1 when limits are decided in Redis",
                                      registry=r, multiprocess_mode="min")
        self.ratelimit_fallbacks = Counter("referral_ratelimit_local_fallbacks",
                                           "Limit decisions made locally because Redis was unreachable", registry=r)
        self.cron_last_failed = Gauge("referral_cron_last_run_failed", "1 while a pg_cron job's newest run is a failure",
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

    def set_replicas(self, replicas: list) -> None:
        for rep in replicas:
            self.replica_up.labels(rep.name).set(1 if rep.up else 0)
            self.replica_lag.labels(rep.name).set(rep.lag if rep.lag is not None else float("nan"))

    def set_ops(self, values: dict | None) -> None:
        """Gauges from the database's `internal.ops_metrics()`; None means the database did not answer."""
        self.db_up.set(0 if values is None else 1)
        for name, value in (values or {}).items():
            if name == "referral_cron_failed_runs_total":
                for job, failures in value.items():
                    self.cron_failed.labels(job).set(failures)
            elif name == "referral_cron_last_run_failed":
                for job, failed in value.items():
                    self.cron_last_failed.labels(job).set(failed)
            elif name in self.ops:
                self.ops[name].set(float(value))

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
