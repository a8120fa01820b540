"""Issue 14: the rotation is fair. Over many draws every eligible link gets an equal share of the (counted)
serves, also when visitors come back and links join late, and it stays right under concurrency: 8
connections drawing in parallel do not herd onto one link and lose no update."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

LINKS = 10


def _settings(conn, values: dict) -> dict:
    old = conn.execute("select value from internal.settings where name = 'referral'").fetchone()[0]
    conn.execute("select internal.set_referral_settings(%s)", [json.dumps(values)])
    return old


@pytest.fixture
def pool(app_db_url) -> Iterator[dict]:
    """Committed data (parallel connections must see it): an offer, LINKS members each sharing a link;
    removed afterwards, settings restored. Throttling is off: these are many visitors, not one client."""
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        old = _settings(conn, {"serves_per_minute": None, "min_account_age_days": 0})
        offer = conn.execute(
            "insert into api.offers (title, institution, offer_type, status, referrals_accepted, referral_link_patterns)"
            " values (%s, 'Fair Bank', 'bank', 'active', true, '{fair.example/r/}') returning id",
            [f"Fairness {tag}"]).fetchone()[0]
        users, links = [], []
        for n in range(LINKS):
            uid = conn.execute("insert into internal.users (email, password) values (%s, 'x') returning id",
                               [f"fair-{tag}-{n}@ref.example"]).fetchone()[0]
            users.append(uid)
            links.append(conn.execute("insert into api.referral_links (offer_id, owner_id, url) values (%s, %s, %s)"
                                      " returning id", [offer, uid, f"https://fair.example/r/{tag}/{n}"]).fetchone()[0])
        try:
            yield {"offer": offer, "links": links, "users": users, "tag": tag}
        finally:
            conn.execute("delete from api.offers where id = %s", [offer])
            conn.execute("delete from internal.users where id = any(%s)", [users])
            conn.execute("update internal.settings set value = %s where name = 'referral'", [json.dumps(old)])


def _counts(conn, links) -> dict:
    rows = conn.execute("select id, times_served, unique_visitors from api.referral_links where id = any(%s)",
                        [links]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _assert_even(shares: list[int], total: int) -> None:
    mean = total / len(shares)
    assert all(abs(s - mean) <= 0.05 * mean for s in shares), shares


def test_ten_thousand_draws_share_evenly_among_ten_links(app_db_url, pool):
    """Distinct visitors, every tenth one coming back (sticky: same link, served but not counted), and
    one link paused for the first half: it catches up, and every link ends within 5 % of the mean."""
    draws = 10_000
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("update api.referral_links set paused = true where id = %s", [pool["links"][0]])
        started = time.monotonic()
        # one transaction per draw, as over HTTP (COMMIT inside DO: the request settings are transaction-local)
        conn.execute(f"""
            do $$
            declare i integer; first uuid; again uuid;
            begin
                for i in 1..{draws} loop
                    if i = {draws} / 2 then
                        update api.referral_links set paused = false where id = '{pool["links"][0]}';
                    end if;
                    perform set_config('role', 'anonymous', true),
                            set_config('request.jwt.claims', '{{"role":"anonymous"}}', true),
                            set_config('request.headers', '{{"user-agent": "fairness"}}', true),
                            set_config('request.client_address', 'fair-' || i, true);
                    first := (api.referral_link('{pool["offer"]}', 'json') ->> 'link_id')::uuid;
                    if i % 10 = 0 then  -- a refresh: the same visitor gets the same link
                        again := (api.referral_link('{pool["offer"]}', 'json') ->> 'link_id')::uuid;
                        if again <> first then
                            raise exception 'visitor % was moved from % to %', i, first, again;
                        end if;
                    end if;
                    commit;
                end loop;
            end
            $$""")
        elapsed = time.monotonic() - started
        counts = _counts(conn, pool["links"])
    served = sum(c[0] for c in counts.values())
    unique = [c[1] for c in counts.values()]
    assert served == draws + draws // 10
    assert sum(unique) == draws
    _assert_even(unique, draws)
    assert elapsed < 15, f"{draws} draws took {elapsed:.1f} s"


def test_parallel_draws_spread_and_lose_no_update(app_db_url, pool):
    workers, per_worker = 8, 150

    def drawer(worker: int) -> list:
        picked = []
        with psycopg.connect(app_db_url, autocommit=True) as conn:
            for i in range(per_worker):
                with conn.transaction():
                    conn.execute("select set_config('role', 'anonymous', true),"
                                 " set_config('request.jwt.claims', '{\"role\":\"anonymous\"}', true),"
                                 " set_config('request.headers', '{}', true),"
                                 " set_config('request.client_address', %s, true)", [f"par-{worker}-{i}"])
                    picked.append(conn.execute("select api.referral_link(%s, 'json') ->> 'link_id'",
                                               [pool["offer"]]).fetchone()[0])
        return picked

    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(drawer, range(workers)))
    total = workers * per_worker
    # the first draw of each connection came at the same moment: they did not all get the same link
    assert len({r[0] for r in results}) > 1
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        counts = _counts(conn, pool["links"])
        clicks, counted = conn.execute("select count(*), count(*) filter (where counted) from internal.referral_clicks"
                                       " where offer_id = %s", [pool["offer"]]).fetchone()
        buckets = conn.execute("select coalesce(sum(serves), 0) from internal.referral_serves where link_id = any(%s)",
                               [pool["links"]]).fetchone()[0]
    assert sum(c[0] for c in counts.values()) == clicks == counted == buckets == total
    picked = [link for r in results for link in r]
    per_link = [picked.count(str(link)) for link in pool["links"]]
    assert per_link == [counts[link][1] for link in pool["links"]]
    _assert_even(per_link, total)
