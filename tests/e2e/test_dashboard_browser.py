"""The dashboard in headless Chromium (Debian's package, driven by Playwright): an admin sees every panel
filled and a chart drawn, then signs out; a non-admin, a bad token and an anonymous visitor see no data."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

CHROMIUM = "/usr/bin/chromium"
# never let the browser phone home or update itself: the tests run offline
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PANELS = ["service", "backup", "offers", "expiring", "events", "viewed", "database", "jobs", "statements", "history",
          "referrals"]
FIRST_SCREEN = ["service", "database", "jobs", "backup"]
EXPIRING = 12  # more than the panel shows
TITLE = "E2E dashboard offer"
BACKUP_FILE = "e2e-dashboard.dump"
VIEWS = 1234

sync_api = pytest.importorskip("playwright.sync_api")


def seed(db_url: str) -> None:
    """An offer expiring in 3 days (the server's days) with views in the last day, a verified backup, fresh
    rollups. Enough views that whatever other tests left behind cannot push the offer out of the top 10."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        offer = conn.execute(
            "insert into api.offers (title, institution, offer_type, status, metadata)"
            " values (%s, 'E2E Bank', 'credit_card', 'active',"
            " jsonb_build_object('expiry_date', to_char(current_date + 3, 'YYYY-MM-DD'))) returning id",
            [TITLE]).fetchone()[0]
        conn.execute("insert into api.analytics_events (event_type, event_data, offer_id, created_at)"
                     " select 'offer_view', jsonb_build_object('offer_id', %s::text), %s,"
                     " now() - n * interval '1 minute' from generate_series(1, %s) n", [offer, offer, VIEWS])
        conn.execute("insert into internal.backup_runs (file, size_bytes, verified, ok) values (%s, 123456, true, true)",
                     [BACKUP_FILE])
        conn.execute("insert into api.offers (title, institution, offer_type, status, metadata)"
                     " select %s || n, 'E2E Bank', 'bank_account', 'active',"
                     " jsonb_build_object('expiry_date', to_char(current_date + 1 + n %% 6, 'YYYY-MM-DD'))"
                     " from generate_series(1, %s) n", [TITLE + " more ", EXPIRING])
        # ten minutes of history, as the sample-ops job leaves it
        conn.execute("select internal.sample_ops(now() - make_interval(mins => n)) from generate_series(1, 10) n")
        conn.execute("select internal.refresh_rollups(now())")


def unseed(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("delete from api.analytics_events where offer_id in (select id from api.offers where title = %s)",
                     [TITLE])
        conn.execute("delete from api.offers where title like %s", [TITLE + "%"])
        conn.execute("delete from internal.backup_runs where file = %s", [BACKUP_FILE])
        conn.execute("select internal.refresh_rollups(now())")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is not installed (Debian packages chromium, chromium-driver)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(app_gateway, app_db_url):
    seed(app_db_url)
    yield app_gateway
    unseed(app_db_url)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def sign_in(page, url: str, email: str, password: str) -> None:
    page.goto(url + "/dashboard")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#signin button[type=submit]")


def wait_for_error(page) -> None:
    # a selector, not wait_for_function: that needs eval, which the page's CSP forbids
    page.wait_for_selector("#signin-error:not(:empty)")


def assert_no_data(page) -> None:
    assert page.is_visible("#signin") and not page.is_visible("#board")
    assert page.locator("#board .body > *").count() == 0
    assert page.evaluate("sessionStorage.length") == 0


@contextlib.contextmanager
def traffic(url: str):
    """A request every 50 ms in the background, so the service panel has requests to measure."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.05):
            httpx.get(url + "/offers?limit=1", timeout=5)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def check_admin_session(page, url: str, email: str, password: str) -> None:
    sign_in(page, url, email, password)
    for panel in PANELS:
        page.wait_for_selector(f"#panel-{panel}[data-state=ready]", timeout=15000)
    text = {panel: page.inner_text(f"#panel-{panel} .body") for panel in PANELS}
    assert TITLE in text["expiring"] and "3 d" in text["expiring"]
    assert TITLE in text["viewed"] and f"{VIEWS:,}" in text["viewed"]
    assert "active" in text["offers"] and "credit card" in text["offers"]
    assert BACKUP_FILE in text["backup"] and "verified" in text["backup"]
    assert page.locator("#panel-jobs tbody tr").count() == 8 and "more" in text["jobs"]  # the rest counted
    page.click("#panel-jobs .more a")  # and shown on demand
    assert "sample-ops" in page.inner_text("#panel-jobs") and "refresh-rollups" in page.inner_text("#panel-jobs")
    assert "Cache hit ratio" in text["database"] and "%" in text["database"]
    assert "Requests / s" in text["service"]
    token = httpx.post(url + "/rpc/login", json={"email": email, "password": password},
                       timeout=10).json()["access_token"]
    # the API port serves /metrics to an admin's token only (the page sends it); else it is the admin port's
    assert httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    assert httpx.get(url + "/metrics", timeout=5).status_code == 404  # not to anyone else
    # the page scrapes again 3 s after the first refresh: then the rate is a number. Traffic in between,
    # or the error ratio and p99 of an empty window are rightly "n/a".
    with traffic(url):
        page.wait_for_selector("#panel-service .tile-value >> text=/^\\d+\\.\\d\\d$/", timeout=10000)
    tiles = page.inner_text("#panel-service .tiles")
    assert "n/a" not in tiles and not tiles.startswith("0.00"), tiles
    assert text["statements"].strip()
    # charts drawn: a line with real coordinates, and bars
    line = page.locator("#panel-events svg.line-chart path.line").first.get_attribute("d")
    assert line.startswith("M") and line.count("L") == 29  # 30 days
    assert page.locator("#panel-offers svg.bar-chart rect").count() >= 2
    # the period switch of the most viewed panel
    page.click("#panel-viewed [data-window='30d']")
    assert TITLE in page.inner_text("#panel-viewed .body")

    page.click("#signout")
    assert_no_data(page)
    page.reload()  # and nothing comes back: the token is gone
    assert_no_data(page)


def check_refused(page, url: str, email: str, password: str) -> None:
    sign_in(page, url, email, password)
    wait_for_error(page)
    assert "refused" in page.inner_text("#signin-error")
    assert_no_data(page)


def test_admin_sees_every_panel_then_signs_out(site, page):
    check_admin_session(page, site.url, site.admin_email, site.admin_password)


def test_non_admin_sees_no_data(site, page):
    check_refused(page, site.url, site.user_email, site.user_password)


def test_wrong_password_sees_no_data(site, page):
    sign_in(page, site.url, site.admin_email, "not the password")
    wait_for_error(page)
    assert "invalid email or password" in page.inner_text("#signin-error")
    assert_no_data(page)


def test_anonymous_and_forged_tokens_see_no_data(site, page):
    page.goto(site.url + "/dashboard")
    assert_no_data(page)
    page.evaluate("""sessionStorage.setItem('churnistic.dashboard.session', '{"access_token": "forged.token.value"}')""")
    page.reload()
    wait_for_error(page)
    assert_no_data(page)


def test_the_page_refreshes_its_token_and_signs_out_when_the_session_ends(site, page, app_db_url):
    email = "dashboard-session@test.example"
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("delete from internal.users where email = %s", [email])
        conn.execute("select internal.create_user(%s, 'dashboard pass 123', 'admin')", [email])
    sign_in(page, site.url, email, "dashboard pass 123")
    page.wait_for_selector("#panel-events[data-state=ready]", timeout=15000)
    stored = json.loads(page.evaluate("sessionStorage.getItem('churnistic.dashboard.session')"))
    stored["expires_at"] = time.time() + 30  # about to expire: the next refresh renews it first
    page.evaluate("(s) => sessionStorage.setItem('churnistic.dashboard.session', s)", json.dumps(stored))
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_function("(old) => !sessionStorage.getItem('churnistic.dashboard.session').includes(old)",
                           arg=stored["refresh_token"], timeout=10000)
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.account_revoke(%s)", [email])
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    wait_for_error(page)
    assert "sign in again" in page.inner_text("#signin-error")
    assert_no_data(page)
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("delete from internal.users where email = %s", [email])


def test_page_is_usable_on_a_phone(site, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, site.url, site.admin_email, site.admin_password)
    page.wait_for_selector("#panel-events[data-state=ready]", timeout=15000)
    # one column, and nothing wider than the screen
    boxes = [page.locator(f"#panel-{p}").bounding_box() for p in ("offers", "events", "jobs")]
    assert len({round(b["x"]) for b in boxes}) == 1 and all(b["width"] <= 390 for b in boxes)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


SCRAPE = """# HELP referral_http_requests_total HTTP requests
referral_http_requests_total{route="/offers",method="GET",status="2xx"} %d
referral_http_requests_total{route="/offers",method="GET",status="5xx"} %d
referral_http_request_duration_seconds_bucket{route="/offers",method="GET",le="0.01"} %d
referral_http_request_duration_seconds_bucket{route="/offers",method="GET",le="0.1"} %d
referral_http_request_duration_seconds_bucket{route="/offers",method="GET",le="+Inf"} %d
referral_rate_limited_total{limit="auth"} %d
"""


def test_metrics_math_in_the_page(site, page):
    """Rates and p99 from two scrapes 10 s apart: 100 requests, 5 of them 5xx, p99 inside the 0.01-0.1 bucket."""
    page.goto(site.url + "/dashboard/")
    result = page.evaluate("""async ([a, b]) => {
        const m = await import('./metrics.js');
        const prev = m.summarize(m.parse(a), 0), curr = m.summarize(m.parse(b), 10000);
        const buckets = new Map([[0.01, 50], [0.1, 100], [Infinity, 100]]);
        return [m.compare(prev, curr), m.compare(null, curr), m.compare(curr, prev),
                m.quantile(0.75, buckets), m.quantile(0.99, new Map())];
    }""", [SCRAPE % (100, 0, 50, 100, 100, 1), SCRAPE % (195, 5, 100, 190, 200, 4)])
    interval, lifetime, restarted, p75, nothing = result
    assert abs(p75 - 0.055) < 1e-9 and nothing is None  # linear inside the bucket, as histogram_quantile
    assert interval["requestRate"] == 10 and interval["errorRate"] == 0.05 and interval["limitedDelta"] == 3
    # 99th of 100 new requests: the 0.1 bucket holds 90 of them, +Inf the last 10 → beyond 0.1
    assert interval["p99"] == 0.1
    assert lifetime["requestRate"] is None and lifetime["errorRate"] == 5 / 200
    assert restarted["requestRate"] is None  # counters went down: no rate, rather than a negative one


# --- the first screen (issue 15): status, colours, capped lists, history ------------------------------

SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")  # a folder: save the healthy and degraded screens there


def first_screen(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    return context, context.new_page()


def admin_on_board(page, site) -> None:
    sign_in(page, site.url, site.admin_email, site.admin_password)
    for panel in PANELS:
        page.wait_for_selector(f"#panel-{panel}[data-state=ready]", timeout=15000)
    page.wait_for_selector("#status[data-level]")


def background(page, selector: str) -> str:
    return page.eval_on_selector(selector, "el => getComputedStyle(el).backgroundColor")


@contextlib.contextmanager
def failed_run(db_url: str, job: str):
    with psycopg.connect(db_url, autocommit=True) as conn:
        run = conn.execute(
            "insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status,"
            " return_message, start_time, end_time) select jobid, nextval('cron.runid_seq'), 1, 'x', 'x', command,"
            " 'failed', 'ERROR: e2e failure', now(), now() + interval '2 seconds' from cron.job where jobname = %s"
            " returning runid", [job]).fetchone()[0]
    try:
        yield
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("delete from cron.job_run_details where runid = %s", [run])


def test_first_screen_healthy_then_a_failed_job(site, browser, app_db_url):
    context, page = first_screen(browser)
    admin_on_board(page, site)
    assert page.get_attribute("#status", "data-level") == "healthy", page.inner_text("#status")
    assert background(page, "#status") == "rgb(27, 127, 75)"  # --ok
    # the operator's panels are on the first screen, in their place
    for panel in FIRST_SCREEN:
        box = page.locator(f"#panel-{panel}").bounding_box()
        assert box["y"] + min(box["height"], 200) <= 900, (panel, box)
    assert page.locator("#panel-backup .tile[data-grade=ok]").count() >= 1
    # capped lists: the first rows, the count of the others and a link to them all
    expiring = page.inner_text("#panel-expiring .body")
    assert page.locator("#panel-expiring tbody tr").count() == 8 and f"and {EXPIRING + 1 - 8} more" in expiring
    assert "offers?status=eq.active" in page.get_attribute("#panel-expiring .more a", "href")
    assert page.evaluate("document.documentElement.scrollHeight") < 2600  # was 14,000 px with 20,000 offers
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "dashboard-healthy.png"))

    with failed_run(app_db_url, "refresh-rollups"):
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        page.wait_for_selector("#status[data-level=degraded]", timeout=10000)
        assert "refresh-rollups failed" in page.inner_text("#status-reasons")
        assert background(page, "#status") == "rgb(168, 98, 0)"  # --warn
        row = page.locator("#panel-jobs tbody tr.failed")
        assert row.count() == 1 and "refresh-rollups" in row.inner_text()  # first, red, never below the cap
        assert page.locator("#panel-jobs tbody tr").first.get_attribute("class") == "failed"
    context.close()


def test_database_down_marks_the_figures_stale(site, browser):
    context, page = first_screen(browser)
    admin_on_board(page, site)
    before = page.inner_text("#panel-database .body")
    page.route("**/rpc/dashboard", lambda route: route.fulfill(
        status=503, content_type="application/json", headers={"Retry-After": "1"},
        body='{"code":"PGRST000","message":"database unreachable","details":null,"hint":null}'))
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_selector("#status[data-level=down]", timeout=10000)
    assert "database" in page.inner_text("#status-reasons") and "503" in page.inner_text("#status-reasons")
    assert background(page, "#status") == "rgb(192, 38, 45)"  # --bad
    assert page.get_attribute("#board", "data-stale") == "true" and "Stale" in page.inner_text("#updated")
    opacity = page.eval_on_selector("#panel-database", "el => getComputedStyle(el).opacity")
    assert float(opacity) < 1 and page.inner_text("#panel-database .body") == before  # old figures, dimmed
    assert page.is_visible("#board") and not page.is_visible("#signin")
    page.unroute("**/rpc/dashboard")
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_selector("#status:not([data-level=down])", timeout=10000)  # back: fresh figures, not stale
    assert page.get_attribute("#board", "data-stale") is None
    context.close()


BURST = """referral_http_requests_total{route="/offers",method="GET",status="2xx"} %d
referral_http_requests_total{route="/offers",method="GET",status="5xx"} %d
referral_http_requests_total{route="/rpc/dashboard",method="POST",status="5xx"} %d
referral_http_request_duration_seconds_bucket{route="/offers",method="GET",le="0.01"} %d
referral_http_request_duration_seconds_bucket{route="/offers",method="GET",le="+Inf"} %d
referral_db_pool_connections{state="waiting"} 0
referral_db_up 1
"""


def test_a_5xx_burst_turns_the_status_and_the_tile_red(site, browser):
    """Scrapes made up by the test: 2,000 requests then 1,000 more of which 500 failed. The dashboard's own
    failing calls in the same scrapes count for nothing."""
    context, page = first_screen(browser)
    scrapes = iter([BURST % (2000, 0, 0, 2000, 2000)] + [BURST % (2500, 500, 9000, 3000, 3000)] * 50)
    page.route("**/metrics", lambda route: route.fulfill(status=200, content_type="text/plain", body=next(scrapes)))
    admin_on_board(page, site)
    page.wait_for_selector("#status[data-level=degraded]", timeout=10000)  # the second scrape, 3 s later
    reasons = page.inner_text("#status-reasons")
    assert "50.0 % of requests fail with 5xx" in reasons, reasons
    assert page.get_attribute("#panel-service .tile:nth-child(2)", "data-grade") == "bad"
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "dashboard-degraded.png"))
    context.close()


def test_history_charts_come_from_the_database_after_a_restart(site, browser, app_db_url):
    # the last 40 minutes, whatever ran before: at least two 15-minute points for the 24-hour view at any time
    # of day (ten minutes fell into one such bin now and then, and that view said "not enough samples")
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("select internal.sample_ops(now() - make_interval(mins => n)) from generate_series(40, 1, -1) n")
    for _ in range(2):  # a second browser session: nothing kept in the page, the samples are in SQL
        context, page = first_screen(browser)
        admin_on_board(page, site)
        _wait_for_charts(page)  # drawn after the history call returns: a busy machine takes its time
        assert page.locator("#panel-history svg.line-chart path.line").first.get_attribute("d").count("L") >= 9
        page.click("#panel-history [data-range='day']")
        _wait_for_charts(page)
        context.close()


def _wait_for_charts(page, count: int = 3) -> None:
    charts = page.locator("#panel-history svg.line-chart")
    charts.nth(count - 1).wait_for(state="attached", timeout=15000)  # (the page's CSP forbids wait_for_function)
    assert charts.count() == count


def test_non_admin_gets_a_sign_in_prompt_not_a_database_error(site, page):
    check_refused(page, site.url, site.user_email, site.user_password)
    message = page.inner_text("#signin-error")
    assert "administrators" in message and "permission denied" not in message
    assert page.is_visible("#email")
