"""Issue 14 in SQL, acting as each role: offer types and referral terms, members' links (own only, one per
offer, normalised URLs on the issuer's hosts, no duplicates, account age), the rotation's rules (never your
own link, paused/capped/suspended links out, sticky visitor, dedup, throttle), reports, strikes, bans,
admin RPCs and their audit, the jobs and the analytics."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.conftest import act_as

PATTERNS = ["www.referyourchasecard.com/", "*.chase.com/raf/"]
LINK = "https://www.referyourchasecard.com/6a/ABC123"


def new_user(db, tag: str, age_days: int = 30, role: str = "user") -> str:
    uid = str(uuid.uuid4())
    db.execute("insert into internal.users (id, email, password, role, created_at)"
               " values (%s, %s, 'x', %s, now() - make_interval(days => %s))",
               [uid, f"{tag}-{uid[:8]}@ref.example", role, age_days])
    return uid


def new_offer(db, patterns=PATTERNS, accepted=True, status="active", public_url=None) -> str:
    return str(db.execute(
        "insert into api.offers (title, institution, offer_type, status, referrals_accepted, referral_link_patterns,"
        " referrer_reward, referrer_reward_unit, public_url)"
        " values ('Chase Sapphire Preferred', 'Chase', 'credit_card', %s, %s, %s, 15000, 'Chase Ultimate Rewards', %s)"
        " returning id", [status, accepted, patterns, public_url]).fetchone()[0])


def as_member(db, uid: str | None, role: str = "app_user", address: str = "198.51.100.7", agent: str = "test") -> None:
    db.execute("reset role")
    if uid is None:
        act_as(db, "anonymous")
    else:
        act_as(db, role, sub=uid)
    db.execute("select set_config('request.headers', %s, true), set_config('request.client_address', %s, true)",
               [json.dumps({"user-agent": agent}), address])


def fails(db, sql: str, params=(), sqlstate: str | None = None, match: str | None = None) -> psycopg.Error:
    db.execute("savepoint s")
    with pytest.raises(psycopg.Error) as caught:
        db.execute(sql, params)
    db.execute("rollback to savepoint s")
    if sqlstate:
        assert caught.value.sqlstate == sqlstate, caught.value
    if match:
        assert match in str(caught.value), caught.value
    return caught.value


def pgrst(err: psycopg.Error) -> tuple[dict, dict]:
    assert err.sqlstate == "PGRST", err
    return json.loads(err.diag.message_primary), json.loads(err.diag.message_detail)


def submit(db, uid: str, offer: str, url: str = LINK) -> str:
    as_member(db, uid)
    return str(db.execute("insert into api.referral_links (offer_id, url) values (%s, %s) returning id",
                          [offer, url]).fetchone()[0])


def draw(db, offer: str, fmt: str = "json") -> dict:
    return db.execute("select api.referral_link(%s, %s)", [offer, fmt]).fetchone()[0]


def settings(db, **values) -> None:
    db.execute("reset role")
    db.execute("select internal.set_referral_settings(%s)", [json.dumps(values)])


@pytest.fixture
def world(db):
    db.execute("select internal.set_referral_settings('{\"min_account_age_days\": 7}')")
    ids = {name: new_user(db, name) for name in ("alice", "bob", "carol", "dave", "erin")}
    ids["admin"] = new_user(db, "admin", role="admin")
    ids["young"] = new_user(db, "young", age_days=1)
    ids["offer"] = new_offer(db)
    return ids


# --- offer types and terms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [("bank", "bank"), ("bank_account", "bank"), ("credit_card", "credit_card"),
                                           ("brokerage", "brokerage")])
def test_offer_types_use_churnistic_vocabulary_and_accept_the_old_alias(db, given, stored):
    act_as(db, "app_admin")
    got = db.execute("insert into api.offers (title, institution, offer_type) values ('T', 'I', %s) returning offer_type",
                     [given]).fetchone()[0]
    assert got == stored


def test_an_updated_alias_is_stored_as_bank_and_unknown_types_are_refused(db):
    act_as(db, "app_admin")
    oid = db.execute("insert into api.offers (title, institution, offer_type) values ('T', 'I', 'brokerage') returning id"
                     ).fetchone()[0]
    assert db.execute("update api.offers set offer_type = 'bank_account' where id = %s returning offer_type",
                      [oid]).fetchone()[0] == "bank"
    fails(db, "insert into api.offers (title, institution, offer_type) values ('T', 'I', 'checking')", sqlstate="23514")


@pytest.mark.parametrize("patterns", [["https://www.chase.com/"], ["WWW.CHASE.COM"], ["chase"], ["www.chase.com?x=1"],
                                      ["*.*.chase.com"], ["www.chase.com/ a"]])
def test_bad_link_patterns_are_refused(db, patterns):
    act_as(db, "app_admin")
    fails(db, "insert into api.offers (title, institution, offer_type, referral_link_patterns) values ('T', 'I', 'bank', %s)",
          [patterns], sqlstate="23514")


def test_accepting_referrals_needs_patterns_and_rewards_need_units(db):
    act_as(db, "app_admin")
    fails(db, "insert into api.offers (title, institution, offer_type, referrals_accepted) values ('T', 'I', 'bank', true)",
          sqlstate="23514", match="offers_referral_patterns")
    fails(db, "insert into api.offers (title, institution, offer_type, referee_reward) values ('T', 'I', 'bank', 50)",
          sqlstate="23514", match="offers_referee_reward_unit")


# --- URL normalisation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    LINK, "HTTPS://WWW.ReferYourChaseCard.com/6a/ABC123", "http://www.referyourchasecard.com/6a/ABC123",
    "https://www.referyourchasecard.com:443/6a/ABC123", "https://www.referyourchasecard.com./6a/ABC123#top",
    "  https://www.referyourchasecard.com/6a/ABC123?  ",
])
def test_spellings_of_one_link_normalise_to_one_url(db, raw):
    assert db.execute("select internal.normalize_referral_url(%s)", [raw]).fetchone()[0] == LINK


def test_normalisation_keeps_path_case_and_query(db):
    got = db.execute("select internal.normalize_referral_url('https://Sofi.com?ref=AbC&x=%2F')").fetchone()[0]
    assert got == "https://sofi.com/?ref=AbC&x=%2F"


@pytest.mark.parametrize("raw, message", [
    ("ftp://www.chase.com/x", "https link"), ("javascript:alert(1)", "absolute https"), ("www.chase.com/x", "absolute"),
    ("https://user:pw@www.chase.com/x", "user name"), ("https://www.chase.com:8443/x", "port"),
    ("https://93.184.216.34/x", "host"), ("https://www.chase.com/a b", "spaces"), ("https://www.chase.com/\u00e9", "ASCII"),
    ("https://www.chase.com/raf/../redirect", "path segments"), ("https://www.chase.com/raf/%2E%2E/x", "path segments"),
    ("https://" + "a" * 2100 + ".com/", "too long"), ("", "required"),
])
def test_malformed_urls_are_refused_with_what_to_change(db, raw, message):
    fails(db, "select internal.normalize_referral_url(%s)", [raw], sqlstate="22023", match=message)


# --- members' links ----------------------------------------------------------------------------------------

def test_a_member_submits_one_link_whose_owner_comes_from_the_token(db, world):
    link = submit(db, world["alice"], world["offer"], "HTTP://WWW.REFERYOURCHASECARD.COM/6a/ABC123#x")
    row = db.execute("select owner_id, url, status, times_served from api.referral_links where id = %s", [link]).fetchone()
    assert row == (uuid.UUID(world["alice"]), LINK, "active", 0)
    # naming another owner is not even a column members may write
    fails(db, "insert into api.referral_links (offer_id, url, owner_id) values (%s, %s, %s)",
          [world["offer"], LINK + "X", world["bob"]], sqlstate="42501")


def test_one_link_per_offer_and_member(db, world):
    submit(db, world["alice"], world["offer"])
    fails(db, "insert into api.referral_links (offer_id, url) values (%s, %s)",
          [world["offer"], "https://www.referyourchasecard.com/6a/OTHER"], sqlstate="23505", match="already share a link")


@pytest.mark.parametrize("url", [
    "https://bit.ly/3xYz", "https://chase.com.evil.example/raf/x", "https://www.referyourchasecard.com.evil.example/6a/x",
    "https://chase.com/raf/x",  # *.chase.com is subdomains only
    "https://secure.chase.com/apply/x",  # not under /raf/
    "https://evil-referyourchasecard.com/6a/x",
])
def test_links_off_the_issuers_hosts_or_paths_are_refused(db, world, url):
    as_member(db, world["alice"])
    fails(db, "insert into api.referral_links (offer_id, url) values (%s, %s)", [world["offer"], url],
          sqlstate="22023", match="no shorteners")


def test_a_subdomain_under_the_path_prefix_is_accepted(db, world):
    link = submit(db, world["alice"], world["offer"], "https://Accounts.Chase.com/raf/XYZ?src=a")
    assert db.execute("select url from api.referral_links where id = %s", [link]).fetchone()[0] == \
        "https://accounts.chase.com/raf/XYZ?src=a"


def test_the_same_url_under_two_accounts_is_refused_whatever_its_spelling(db, world):
    submit(db, world["alice"], world["offer"])
    as_member(db, world["bob"])
    fails(db, "insert into api.referral_links (offer_id, url) values (%s, %s)",
          [world["offer"], "http://www.referyourchasecard.com:80/6a/ABC123#again"], sqlstate="23505", match="already shared")


def test_eligibility_account_age_and_offers_that_take_no_referrals(db, world):
    as_member(db, world["young"])
    fails(db, "insert into api.referral_links (offer_id, url) values (%s, %s)", [world["offer"], LINK],
          sqlstate="42501", match="7 days old")
    settings(db, min_account_age_days=0)
    submit(db, world["young"], world["offer"])
    db.execute("reset role")
    closed = new_offer(db, accepted=False)
    draft = new_offer(db, status="draft")
    for offer in (closed, draft):
        as_member(db, world["bob"])
        fails(db, "insert into api.referral_links (offer_id, url) values (%s, %s)", [offer, LINK + "B"],
              sqlstate="22023", match="does not accept")
    as_member(db, None)
    fails(db, "insert into api.referral_links (offer_id, url) values (%s, %s)", [world["offer"], LINK + "C"],
          sqlstate="42501")


def test_members_see_and_change_only_their_own_links_admins_see_all(db, world):
    mine = submit(db, world["alice"], world["offer"])
    submit(db, world["bob"], world["offer"], LINK + "BOB")
    as_member(db, world["alice"])
    assert [r[0] for r in db.execute("select url from api.referral_links")] == [LINK]
    as_member(db, world["bob"])
    assert db.execute("update api.referral_links set paused = true where id = %s", [mine]).rowcount == 0
    assert db.execute("delete from api.referral_links where id = %s", [mine]).rowcount == 0
    assert db.execute("select api.referral_cap_reached(%s)", [mine]).fetchone()[0] is None
    for column, value in [("status", "active"), ("times_served", 0), ("open_reports", 0)]:
        fails(db, f"update api.referral_links set {column} = %s", [value], sqlstate="42501")
    as_member(db, None)
    fails(db, "select * from api.referral_links", sqlstate="42501")
    as_member(db, world["admin"], role="app_admin")
    assert db.execute("select count(*) from api.referral_links").fetchone()[0] == 2


def test_owners_pause_cap_replace_and_delete_their_link(db, world):
    link = submit(db, world["alice"], world["offer"])
    assert db.execute("update api.referral_links set paused = true where id = %s", [link]).rowcount == 1
    capped = db.execute("select capped_until from api.referral_cap_reached(%s)", [link]).fetchone()[0]
    assert capped.month == 1 and capped.day == 1
    fails(db, "update api.referral_links set capped_until = current_date - 1", sqlstate="22023", match="capped_until")
    db.execute("update api.referral_links set url = 'https://www.referyourchasecard.com/6a/NEW' where id = %s", [link])
    fails(db, "update api.referral_links set url = 'https://bit.ly/x'", sqlstate="22023")
    assert db.execute("delete from api.referral_links where id = %s", [link]).rowcount == 1


# --- the rotation's rules ----------------------------------------------------------------------------------

def test_never_your_own_link_and_only_eligible_ones(db, world):
    alice = submit(db, world["alice"], world["offer"])
    as_member(db, world["alice"])
    body, meta = pgrst(fails(db, "select api.referral_link(%s, 'json')", [world["offer"]]))
    assert meta["status"] == 404 and body["code"] == "RS404"
    as_member(db, world["bob"])
    assert draw(db, world["offer"])["link_id"] == alice
    for change in ["paused = true", "capped_until = current_date + 30"]:
        as_member(db, world["alice"])
        db.execute(f"update api.referral_links set {change} where id = %s", [alice])
        as_member(db, world["carol"], address="203.0.113.9")
        pgrst(fails(db, "select api.referral_link(%s, 'json')", [world["offer"]]))
        as_member(db, world["alice"])
        db.execute("update api.referral_links set paused = false, capped_until = null where id = %s", [alice])
    db.execute("reset role")
    db.execute("update internal.users set disabled_at = now() where id = %s", [world["alice"]])
    as_member(db, world["bob"])
    pgrst(fails(db, "select api.referral_link(%s, 'json')", [world["offer"]]))


def test_unknown_or_closed_offers_are_404_and_the_public_link_is_offered(db, world):
    as_member(db, None)
    body, meta = pgrst(fails(db, "select api.referral_link(%s)", [str(uuid.uuid4())]))
    assert meta["status"] == 404
    db.execute("reset role")
    offer = new_offer(db, public_url="https://creditcards.chase.com/sapphire")
    as_member(db, None)
    body, _ = pgrst(fails(db, "select api.referral_link(%s)", [offer]))
    assert body["hint"] == "the public link: https://creditcards.chase.com/sapphire"
    fails(db, "select api.referral_link(%s, 'xml')", [offer], sqlstate="22023")


def test_a_visitor_keeps_their_link_and_counts_once(db, world):
    for who in ("alice", "bob", "carol"):
        submit(db, world[who], world["offer"], f"{LINK}{who}")
    as_member(db, None, address="192.0.2.1")
    first = draw(db, world["offer"])
    assert all(draw(db, world["offer"])["link_id"] == first["link_id"] for _ in range(5))
    db.execute("reset role")
    rows = db.execute("select times_served, unique_visitors from api.referral_links where id = %s",
                      [first["link_id"]]).fetchone()
    assert rows == (6, 1)
    assert db.execute("select count(*), count(*) filter (where counted) from internal.referral_clicks"
                      " where offer_id = %s", [world["offer"]]).fetchone() == (6, 1)
    # no raw address anywhere: the visitor is a keyed hash
    stored = db.execute("select visitor from internal.referral_clicks where offer_id = %s limit 1",
                        [world["offer"]]).fetchone()[0]
    assert len(stored) == 32 and b"192.0.2.1" not in stored


def test_another_visitor_gets_the_least_served_link(db, world):
    links = {submit(db, world[w], world["offer"], f"{LINK}{w}") for w in ("alice", "bob", "carol")}
    served = []
    for n in range(3):
        as_member(db, None, address=f"192.0.2.{n + 10}")
        served.append(draw(db, world["offer"])["link_id"])
    assert set(served) == links


def test_serves_are_throttled_per_visitor(db, world):
    submit(db, world["alice"], world["offer"])
    settings(db, serves_per_minute=3)
    as_member(db, None, address="192.0.2.99")
    for _ in range(3):
        draw(db, world["offer"])
    body, meta = pgrst(fails(db, "select api.referral_link(%s)", [world["offer"]]))
    assert meta["status"] == 429 and int(meta["headers"]["Retry-After"]) >= 1 and body["code"] == "RS429"
    as_member(db, None, address="192.0.2.100")  # another visitor is not throttled
    draw(db, world["offer"])


def test_the_redirect_form_sets_302_and_the_location(db, world):
    submit(db, world["alice"], world["offer"], LINK + "?a=1&b=%20")
    as_member(db, world["bob"])
    draw(db, world["offer"], "redirect")
    status, headers = db.execute("select current_setting('response.status'), current_setting('response.headers')").fetchone()
    assert status == "302"
    assert json.loads(headers) == [{"Location": LINK + "?a=1&b=%20"}, {"Cache-Control": "no-store"}]


def test_referrer_host_is_recorded_from_the_form_or_the_referer(db, world):
    submit(db, world["alice"], world["offer"])
    as_member(db, world["bob"])
    db.execute("select api.referral_link(%s, 'json', 'Old.Reddit.com')", [world["offer"]])
    as_member(db, world["carol"], address="192.0.2.50")
    db.execute("select set_config('request.headers', %s, true)",
               [json.dumps({"referer": "https://www.doctorofcredit.com/x?y", "user-agent": "t"})])
    draw(db, world["offer"])
    db.execute("reset role")
    hosts = [r[0] for r in db.execute("select referrer_host from internal.referral_clicks where offer_id = %s order by id",
                                      [world["offer"]])]
    assert hosts == ["old.reddit.com", "www.doctorofcredit.com"]


# --- reports, strikes, bans --------------------------------------------------------------------------------

def report(db, uid: str, link: str, reason: str = "expired"):
    as_member(db, uid)
    return db.execute("select api.report_referral_link(%s, %s)", [link, reason]).fetchone()[0]


def test_k_reports_from_distinct_members_suspend_a_link_until_its_owner_reverifies(db, world):
    link = submit(db, world["alice"], world["offer"])
    assert report(db, world["bob"], link)["link_suspended"] is False
    fails(db, "select api.report_referral_link(%s, 'spam')", [link], sqlstate="23505", match="already reported")
    assert report(db, world["carol"], link, "invalid")["link_suspended"] is False
    assert report(db, world["dave"], link, "not_referral")["link_suspended"] is True
    as_member(db, world["erin"])
    pgrst(fails(db, "select api.referral_link(%s, 'json')", [world["offer"]]))  # out of rotation
    as_member(db, world["alice"])
    assert db.execute("select status, open_reports from api.referral_links").fetchone() == ("suspended", 3)
    row = db.execute("select status, open_reports from api.reverify_referral_link(%s)", [link]).fetchone()
    assert row == ("active", 0)
    report(db, world["bob"], link)  # a resolved report no longer blocks a new one
    db.execute("reset role")
    assert [r[0] for r in db.execute("select action from internal.referral_audit where link_id = %s order by id",
                                     [link])] == ["auto_suspended", "reverified"]


def test_report_rules_own_link_unknown_link_reason_age_and_daily_limit(db, world):
    link = submit(db, world["alice"], world["offer"])
    as_member(db, world["alice"])
    fails(db, "select api.report_referral_link(%s, 'spam')", [link], sqlstate="22023", match="your own")
    as_member(db, world["bob"])
    fails(db, "select api.report_referral_link(%s, 'spam')", [str(uuid.uuid4())], sqlstate="22023")
    fails(db, "select api.report_referral_link(%s, 'boring')", [link], sqlstate="22023", match="reason must be")
    as_member(db, world["young"])
    fails(db, "select api.report_referral_link(%s, 'spam')", [link], sqlstate="42501", match="days old")
    as_member(db, None)
    fails(db, "select api.report_referral_link(%s, 'spam')", [link], sqlstate="42501")
    settings(db, reports_per_day=2, report_threshold=10)
    others = [submit(db, world[w], world["offer"], f"{LINK}{w}") for w in ("carol", "dave", "erin")]
    report(db, world["bob"], others[0])
    report(db, world["bob"], others[1])
    as_member(db, world["bob"])
    body, meta = pgrst(fails(db, "select api.report_referral_link(%s, 'spam')", [others[2]]))
    assert meta["status"] == 429 and "2 reports a day" in body["hint"]


def test_strikes_block_at_the_threshold_and_decay(db, world):
    link = submit(db, world["alice"], world["offer"])
    as_member(db, world["admin"], role="app_admin")
    for n in range(2):
        got = db.execute("select api.strike_referral_member(%s, 'self-referral spam')", [world["alice"]]).fetchone()[0]
        assert got["strikes"] == n + 1 and got["blocked"] is False
    assert db.execute("select api.strike_referral_member(%s, 'again')", [world["alice"]]).fetchone()[0]["blocked"] is True
    as_member(db, world["bob"])
    pgrst(fails(db, "select api.referral_link(%s, 'json')", [world["offer"]]))  # her link left rotation
    db.execute("reset role")
    second = new_offer(db, patterns=["www.sofi.com/invite/"])
    as_member(db, world["alice"])
    fails(db, "insert into api.referral_links (offer_id, url) values (%s, 'https://www.sofi.com/invite/a')", [second],
          sqlstate="42501", match="strikes")
    db.execute("reset role")
    db.execute("update internal.referral_strikes set at = now() - interval '181 days' where user_id = %s"
               " and reason = 'again'", [world["alice"]])
    as_member(db, world["bob"])
    assert draw(db, world["offer"])["link_id"] == link


def test_bans_and_admin_link_moderation_with_audit(db, world):
    link = submit(db, world["alice"], world["offer"])
    report(db, world["bob"], link, "spam")
    as_member(db, world["admin"], role="app_admin")
    queue = db.execute("select link_id, owner_email, open_reports, reasons from api.referral_moderation_queue()").fetchall()
    assert [(str(q[0]), q[2], q[3]) for q in queue] == [(link, 1, {"spam": 1})]
    db.execute("select api.suspend_referral_link(%s, 'looks fake')", [link])
    as_member(db, world["alice"])
    fails(db, "select api.reverify_referral_link(%s)", [link], sqlstate="42501", match="admin")
    as_member(db, world["admin"], role="app_admin")
    assert db.execute("select status from api.clear_referral_link(%s, 'checked')", [link]).fetchone()[0] == "active"
    db.execute("select api.ban_referral_member(%s, 'fraud')", [world["alice"]])
    as_member(db, world["bob"])
    pgrst(fails(db, "select api.referral_link(%s, 'json')", [world["offer"]]))
    as_member(db, world["admin"], role="app_admin")
    db.execute("select api.ban_referral_member(%s, 'appeal', false)", [world["alice"]])
    db.execute("select api.delete_referral_link(%s, 'duplicate account')", [link])
    actions = [r[0] for r in db.execute("select action from api.referral_audit where user_id = %s order by id",
                                        [world["alice"]])]
    assert actions == ["suspended", "cleared", "banned", "unbanned", "deleted"]
    assert db.execute("select count(*) from api.referral_links").fetchone()[0] == 0


@pytest.mark.parametrize("call", [
    "select * from api.referral_moderation_queue()", "select api.clear_referral_link(%(l)s)",
    "select api.suspend_referral_link(%(l)s, 'x')", "select api.delete_referral_link(%(l)s, 'x')",
    "select api.strike_referral_member(%(u)s, 'x')", "select api.ban_referral_member(%(u)s, 'x')",
])
def test_admin_rpcs_refuse_members(db, world, call):
    link = submit(db, world["alice"], world["offer"])
    as_member(db, world["bob"])
    fails(db, call, {"l": link, "u": world["alice"]}, sqlstate="42501")


# --- jobs and analytics ------------------------------------------------------------------------------------

def test_jobs_reset_caps_expire_links_purge_visitors_and_roll_up(db, world):
    link = submit(db, world["alice"], world["offer"])
    db.execute("update api.referral_links set capped_until = current_date + 10 where id = %s", [link])
    db.execute("reset role")
    assert db.execute("select internal.referral_reset_caps(current_date + 9)").fetchone()[0] == 0
    assert db.execute("select internal.referral_reset_caps(current_date + 10)").fetchone()[0] == 1
    for n in range(3):
        as_member(db, None, address=f"192.0.2.{n + 1}")
        draw(db, world["offer"])
    as_member(db, None, address="192.0.2.1")
    draw(db, world["offer"])  # a repeat: served, not counted
    db.execute("reset role")
    assert db.execute("select internal.referral_refresh_stats(now() + interval '1 second')").fetchone()[0] >= 1
    as_member(db, world["admin"], role="app_admin")
    daily = db.execute("select serves, unique_visitors, rotation_share from api.referral_daily_stats where link_id = %s",
                       [link]).fetchone()
    assert daily == (4, 3, 1)
    stats = db.execute("select links, serves, unique_visitors from api.referral_offer_stats where offer_id = %s",
                       [world["offer"]]).fetchone()
    assert stats == (1, 4, 3)
    panel = db.execute("select internal.referral_dashboard()").fetchone()[0]
    assert panel["top_offers"][0]["offer_id"] == world["offer"] and panel["top_offers"][0]["serves"] == 4
    db.execute("reset role")
    assert db.execute("select internal.referral_purge_visitors(now() + interval '31 days')").fetchone()[0] == 4
    assert db.execute("select count(*) from internal.referral_clicks where visitor is not null and offer_id = %s",
                      [world["offer"]]).fetchone()[0] == 0
    db.execute("update api.offers set status = 'expired' where id = %s", [world["offer"]])
    assert db.execute("select internal.referral_expire_links(now())").fetchone()[0] >= 1
    assert db.execute("select status from api.referral_links where id = %s", [link]).fetchone()[0] == "expired"


def test_jobs_are_scheduled_by_name(db):
    names = {r[0] for r in db.execute("select jobname from cron.job where jobname like 'referral-%'")}
    assert names == {"referral-reset-caps", "referral-expire-links", "referral-purge-visitors", "referral-refresh-stats"}


def test_settings_refuse_unknown_keys_and_bad_values(db):
    fails(db, "select internal.set_referral_settings('{\"nope\": 1}')", sqlstate="22023", match="unknown")
    fails(db, "select internal.set_referral_settings('{\"report_threshold\": 0}')", sqlstate="22023")
    fails(db, "select internal.set_referral_settings('{\"rotation_window_days\": null}')", sqlstate="22023")
    db.execute("select internal.set_referral_settings('{\"serves_per_minute\": null, \"min_account_age_days\": 0}')")
