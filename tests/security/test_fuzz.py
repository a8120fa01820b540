"""Schemathesis against the gateway's own OpenAPI document, as anonymous, user and admin.

Every generated request must get an answer below 500 that agrees with the document where the document says
something (documented status codes' schemas, content types), and the anonymous and user runs must not change
data outside what those actors may write.
"""

from __future__ import annotations

import collections
import os

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from referral_service import backup
from tests.security.conftest import auth

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # per operation and actor; ~1 minute for all three
# What each actor may change: anonymous signs up and logs offer views; a user logs events too; a failed
# login of either is counted per account (migrations/014_account_abuse.sql); sign-ins, refreshes, logouts
# and reset requests keep sessions, tokens, the audit log and the outbox (018-020, 017).
_ACCOUNTS = {"internal.users", "internal.login_failures", "internal.sessions", "internal.refresh_tokens",
             "internal.audit_log", "internal.password_resets", "internal.mail_outbox"}
# a served referral link records its click and serve (024); members write links and reports (024, 025)
_SERVES = {"internal.referral_clicks", "internal.referral_serves"}
MAY_CHANGE = {"anon": {"api.analytics_events", *_ACCOUNTS, *_SERVES},
              "user": {"api.analytics_events", *_ACCOUNTS, *_SERVES, "api.referral_links",
                       "internal.referral_reports", "internal.referral_audit"}}
SERVER_ERRORS = collections.Counter()
FUZZED = collections.Counter()


CONFORMANCE = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _pause_cron(dsn: str, paused: bool) -> None:
    """Scheduled jobs (rollups every 5 minutes) change tables on their own; keep them out of the comparison."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("update cron.job set active = %s", [not paused])


def _states(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        conn.execute("set row_security = off")
        return backup.table_states(conn)


@pytest.mark.parametrize("actor", ["anon", "user", "admin"])  # admin last: it may delete anything
def test_fuzz_openapi(secured, security_db, actor):
    gw, tokens = secured
    headers = auth(tokens[actor])
    doc = httpx.get(gw.url + "/", headers=headers, timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    _pause_cron(security_db.app_url, True)
    before = _states(security_db.app_url)
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            response = case.call(base_url=gw.url, headers=headers, timeout=15)
            FUZZED[actor] += 1
            if response.status_code >= 500:
                SERVER_ERRORS[actor] += 1
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> "
                                f"{response.status_code} {response.text[:300]}")
                return
            if not response.content:  # 204 and friends: no body, no media type to conform
                return
            try:
                case.validate_response(response, checks=CONFORMANCE)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

        run()
    after = _states(security_db.app_url)
    _pause_cron(security_db.app_url, False)
    changed = {t for t in set(before) | set(after) if before.get(t) != after.get(t)}
    # events are stored in monthly partitions (migration 031), written only through api.analytics_events
    changed = {"api.analytics_events" if t.startswith("internal.analytics_events_") else t for t in changed}
    print(f"\nfuzz as {actor}: {FUZZED[actor]} requests, {len(failures)} failures, changed tables {sorted(changed)}")
    assert not failures, "\n".join(failures[:20])
    if actor in MAY_CHANGE:
        assert changed <= MAY_CHANGE[actor], changed - MAY_CHANGE[actor]
    assert httpx.get(gw.admin_url + "/ready", timeout=10).status_code == 200
