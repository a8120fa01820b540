"""Issue 14 over HTTP against the real service: members submit links (PostgREST table writes), the rotation
answers 302 with the member's URL unchanged in Location (JSON body, form body, format=json), GET of the
writing RPC is 405, the shareable GET page posts the form, and the abuse limits (per-visitor throttle,
reports that suspend a link, one report per member) come back as 429/409/404."""

from __future__ import annotations

import json
import uuid

import httpx
import psycopg
import pytest

PASSWORD = "referral pass 123"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def world(app_gateway, app_db_url):
    tag = uuid.uuid4().hex[:8]
    old = sql(app_db_url, "select value from internal.settings where name = 'referral'")[0][0]
    offer = sql(app_db_url,
                "insert into api.offers (title, institution, offer_type, status, referrals_accepted,"
                " referral_link_patterns, public_url) values (%s, 'SoFi', 'bank', 'active', true,"
                " '{www.sofi.com/invite/}', 'https://www.sofi.com/banking/') returning id",
                [f"SoFi checking {tag}"])[0][0]
    members = {}
    for name in ("alice", "bob", "carol", "dave"):
        email = f"{name}-{tag}@ref.example"
        uid = sql(app_db_url, "select internal.create_user(%s, %s)", [email, PASSWORD])[0][0]
        sql(app_db_url, "update internal.users set created_at = now() - interval '30 days' where id = %s", [uid])
        members[name] = {"id": str(uid), "token": app_gateway.login(email, PASSWORD)}
    try:
        yield {"offer": str(offer), "members": members, "tag": tag}
    finally:
        sql(app_db_url, "delete from api.offers where id = %s", [offer])
        sql(app_db_url, "delete from internal.users where email like %s", [f"%-{tag}@ref.example"])
        sql(app_db_url, "update internal.settings set value = %s where name = 'referral'", [json.dumps(old)])


def client(gw, token: str | None = None, agent: str = "referral-test") -> httpx.Client:
    headers = {"User-Agent": agent, **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.Client(base_url=gw.url, headers=headers, timeout=10, follow_redirects=False)


def share(gw, world, who: str, url: str) -> httpx.Response:
    with client(gw, world["members"][who]["token"]) as c:
        return c.post("/referral_links", json={"offer_id": world["offer"], "url": url},
                      headers={"Prefer": "return=representation"})


def test_members_submit_links_through_the_table_and_see_only_their_own(app_gateway, world):
    created = share(app_gateway, world, "alice", "HTTPS://WWW.SOFI.COM/invite/money?gcp=abc#x")
    assert created.status_code == 201, created.text
    row = created.json()[0]
    assert row["url"] == "https://www.sofi.com/invite/money?gcp=abc" and row["owner_id"] == world["members"]["alice"]["id"]
    again = share(app_gateway, world, "bob", "https://www.sofi.com/invite/money?gcp=abc")
    assert again.status_code == 409 and again.json()["message"] == "this referral link is already shared"
    second = share(app_gateway, world, "alice", "https://www.sofi.com/invite/money?gcp=other")
    assert second.status_code == 409 and second.json()["hint"] == "replace its url (PATCH) or delete it"
    shortened = share(app_gateway, world, "bob", "https://bit.ly/sofi-bonus")
    assert shortened.status_code == 400 and "no shorteners" in shortened.json()["message"]
    with client(app_gateway, world["members"]["bob"]["token"]) as c:
        assert c.get("/referral_links").json() == []
    with client(app_gateway) as anon:
        assert anon.get("/referral_links").status_code == 401
        assert anon.post("/referral_links", json={"offer_id": world["offer"], "url": "https://www.sofi.com/invite/z"}
                         ).status_code == 401


def test_the_rotation_redirects_with_the_url_unchanged(app_gateway, world):
    url = "https://www.sofi.com/invite/money?gcp=a%2Fb&utm_source=x;y"
    assert share(app_gateway, world, "alice", url).status_code == 201
    with client(app_gateway, agent="visitor-302") as c:
        reply = c.post("/rpc/referral_link", json={"offer_id": world["offer"]})
        assert reply.status_code == 302, reply.text
        assert reply.headers["location"] == url
        assert reply.headers["cache-control"] == "no-store"
        assert reply.json()["url"] == url
        # an HTML form posts the same (what the shareable page does)
        form = c.post("/rpc/referral_link", data={"offer_id": world["offer"], "via": "old.reddit.com"})
        assert form.status_code == 302 and form.headers["location"] == url
        info = c.post("/rpc/referral_link", json={"offer_id": world["offer"], "format": "json"})
        assert info.status_code == 200 and "location" not in info.headers
        assert info.json() == {"offer_id": world["offer"], "link_id": info.json()["link_id"], "url": url,
                               "public_url": "https://www.sofi.com/banking/"}
    # the owner is never sent to their own link
    with client(app_gateway, world["members"]["alice"]["token"]) as owner:
        own = owner.post("/rpc/referral_link", json={"offer_id": world["offer"]})
        assert own.status_code == 404 and own.json()["hint"] == "the public link: https://www.sofi.com/banking/"


def test_get_of_the_writing_rpc_is_405_and_the_shareable_page_posts_the_form(app_gateway, world):
    share(app_gateway, world, "alice", "https://www.sofi.com/invite/get-test")
    with client(app_gateway, agent="visitor-get") as c:
        refused = c.get("/rpc/referral_link", params={"offer_id": world["offer"]})
        assert refused.status_code == 405 and refused.json()["code"] == "RS405"
        assert refused.headers["allow"] == "POST"
        page = c.get("/rpc/referral_go", params={"offer_id": world["offer"]},
                     headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                              "Referer": "https://www.reddit.com/r/churning/comments/x"})
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        body = page.text
        assert '<form method="post" action="referral_link">' in body
        assert f'name="offer_id" value="{world["offer"]}"' in body and 'name="via" value="www.reddit.com"' in body
        missing = c.get("/rpc/referral_go", params={"offer_id": str(uuid.uuid4())}, headers={"Accept": "text/html"})
        assert missing.status_code == 404


def test_serves_are_throttled_per_visitor(app_gateway, app_db_url, world):
    share(app_gateway, world, "alice", "https://www.sofi.com/invite/throttle")
    sql(app_db_url, "select internal.set_referral_settings('{\"serves_per_minute\": 3}')")
    agent = f"throttled-{uuid.uuid4().hex}"
    with client(app_gateway, agent=agent) as c:
        for _ in range(3):
            assert c.post("/rpc/referral_link", json={"offer_id": world["offer"]}).status_code == 302
        limited = c.post("/rpc/referral_link", json={"offer_id": world["offer"]})
        assert limited.status_code == 429 and limited.json()["code"] == "RS429"
        assert int(limited.headers["retry-after"]) >= 1
    with client(app_gateway, agent=agent + "-other") as other:
        assert other.post("/rpc/referral_link", json={"offer_id": world["offer"]}).status_code == 302


def test_reports_from_distinct_members_suspend_a_link_once_each(app_gateway, world):
    link = share(app_gateway, world, "alice", "https://www.sofi.com/invite/reported").json()[0]["id"]
    for n, who in enumerate(("bob", "carol", "dave")):
        with client(app_gateway, world["members"][who]["token"]) as c:
            reply = c.post("/rpc/report_referral_link", json={"link_id": link, "reason": "expired"})
            assert reply.status_code == 200, reply.text
            assert reply.json()["link_suspended"] is (n == 2)
    with client(app_gateway, world["members"]["bob"]["token"]) as c:
        twice = c.post("/rpc/report_referral_link", json={"link_id": link, "reason": "spam"})
        assert twice.status_code == 409 and twice.json()["message"] == "you already reported this link"
        assert c.post("/rpc/referral_link", json={"offer_id": world["offer"]}).status_code == 404
    with client(app_gateway, world["members"]["alice"]["token"]) as owner:
        mine = owner.get("/referral_links", params={"select": "status,open_reports"}).json()
        assert mine == [{"status": "suspended", "open_reports": 3}]
        back = owner.post("/rpc/reverify_referral_link", json={"link_id": link})
        assert back.status_code == 200 and back.json()["status"] == "active"
    with client(app_gateway, world["members"]["bob"]["token"]) as c:
        assert c.post("/rpc/referral_link", json={"offer_id": world["offer"]}).status_code == 302
        assert c.post("/rpc/referral_moderation_queue").status_code == 403
