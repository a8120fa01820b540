"""Health, metrics, request ids, logs and rate limits of the running service."""

import concurrent.futures
import json
import time

import httpx
import pytest

from tests.conftest import app_gateway_env
from tests.support import gateway_process


def test_live_and_ready(app_gateway):
    assert httpx.get(app_gateway.admin_url + "/live").status_code == 200
    ready = httpx.get(app_gateway.admin_url + "/ready")
    assert ready.status_code == 200 and ready.text == "ready"
    # the API port keeps /live for load balancers, and nothing of readiness
    assert httpx.get(app_gateway.url + "/live").text == "ok"
    assert httpx.get(app_gateway.url + "/ready").status_code == 404


def test_request_id_is_echoed_or_made(app_gateway):
    mine = httpx.get(app_gateway.url + "/offers?limit=1", headers={"X-Request-Id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made = httpx.get(app_gateway.url + "/offers?limit=1", headers={"X-Request-Id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


def test_metrics_exposition(app_gateway):
    httpx.get(app_gateway.url + "/offers?limit=1")
    httpx.get(app_gateway.url + "/no_such_table")
    text = httpx.get(app_gateway.admin_url + "/metrics").text
    assert 'referral_http_requests_total{method="GET",route="/offers",status="2xx"}' in text
    assert 'route="unmatched",status="4xx"' in text
    assert "referral_http_request_duration_seconds_bucket" in text
    assert 'referral_db_pool_connections{state="idle"}' in text
    assert "referral_db_up 1.0" in text
    assert "referral_schema_cache_reloads_total 1.0" in text
    assert 'referral_cron_failed_runs_total{jobname="cleanup-expired-offers"} 0.0' in text
    assert "referral_backup_last_success_timestamp_seconds" in text


@pytest.fixture(scope="module")
def limited(app_db_url, secrets, tmp_path_factory):
    """A gateway with small limits that do not refill during a test: 20 requests/600 s per client, 3/600 s on
    login and signup."""
    folder = tmp_path_factory.mktemp("limited")
    env = app_gateway_env(app_db_url, secrets, REFERRAL_RATE_LIMIT="20/600", REFERRAL_AUTH_RATE_LIMIT="3/600",
                          REFERRAL_TRUSTED_PROXIES="127.0.0.1", REFERRAL_RATELIMIT_FILE=str(folder / "rl"))
    with gateway_process(env, folder / "gateway.log") as gw:
        yield gw.url, folder / "gateway.log"


def test_general_limit_holds_under_concurrent_load(limited):
    url, _ = limited
    ip = {"X-Forwarded-For": "203.0.113.7"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: httpx.get(url + "/offers?limit=1", headers=ip), range(40)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses.count(200) == 20 and statuses.count(429) == 20
    refused = next(r for r in replies if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "20" and refused.headers["ratelimit-remaining"] == "0"
    assert refused.json()["message"] == "Too many requests"
    allowed = next(r for r in replies if r.status_code == 200)
    assert allowed.headers["ratelimit-limit"] == "20"
    # another client (address) is not affected
    assert httpx.get(url + "/offers?limit=1", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200


def test_limit_resets(app_db_url, secrets, tmp_path):
    env = app_gateway_env(app_db_url, secrets, REFERRAL_RATE_LIMIT="3/3", REFERRAL_RATELIMIT_FILE=str(tmp_path / "rl"))
    with gateway_process(env, tmp_path / "gateway.log") as gw:
        url = gw.url
        started = time.monotonic()
        codes = [httpx.get(url + "/offers?limit=1").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429] and time.monotonic() - started < 1
        time.sleep(1.1)  # one request's worth (3 s / 3) refills
        assert httpx.get(url + "/offers?limit=1").status_code == 200
        assert httpx.get(url + "/offers?limit=1").status_code == 429


def test_login_has_a_stricter_limit(limited, app_gateway):
    url, _ = limited
    ip = {"X-Forwarded-For": "192.0.2.44"}
    body = {"email": "nobody@test.example", "password": "guess guess 1"}
    codes = [httpx.post(url + "/rpc/login", json=body, headers=ip).status_code for _ in range(5)]
    assert codes == [403, 403, 403, 429, 429]
    assert httpx.get(url + "/offers?limit=1", headers=ip).status_code == 200  # other paths still work


def test_untrusted_forwarded_for_is_ignored(app_db_url, secrets, tmp_path):
    env = app_gateway_env(app_db_url, secrets, REFERRAL_RATE_LIMIT="2/60", REFERRAL_RATELIMIT_FILE=str(tmp_path / "rl"))
    with gateway_process(env, tmp_path / "gateway.log") as gw:
        codes = [httpx.get(gw.url + "/offers?limit=1", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
                 for i in range(3)]
    assert codes == [200, 200, 429]


def test_signed_in_clients_are_limited_by_subject(limited, app_gateway):
    url, _ = limited
    token = app_gateway.login(app_gateway.user_email, app_gateway.user_password)
    auth = {"Authorization": f"Bearer {token}"}
    # the same subject from two addresses shares one bucket
    codes = [httpx.get(url + "/users", headers={**auth, "X-Forwarded-For": f"198.51.100.{i % 2 + 10}"}).status_code
             for i in range(22)]
    assert codes.count(200) == 20 and codes[-1] == 429


def test_one_json_log_line_per_request_without_secrets(limited, app_gateway):
    url, log = limited
    token = app_gateway.login(app_gateway.admin_email, app_gateway.admin_password)
    httpx.get(url + "/offers?limit=1&title=eq.secret-search", headers={
        "Authorization": f"Bearer {token}", "X-Request-Id": "log-check-1", "X-Forwarded-For": "192.0.2.99"})
    time.sleep(0.2)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    mine = [entry for entry in lines if entry.get("request_id") == "log-check-1"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["method"] == "GET" and entry["path"] == "/offers" and entry["status"] == 200
    assert entry["role"] == "app_admin" and entry["duration_ms"] >= 0
    text = log.read_text()
    assert token not in text and "secret-search" not in text and app_gateway.admin_password not in text
