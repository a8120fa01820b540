"""The workloads (W1–W7, W1D): the HTTP request wrk sends, and one sample request to capture its SQL."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from benchdb import Fixture


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    method: str
    path: str  # may hold {id} or {term}
    body: str | None = None  # may hold {id}
    headers: dict[str, str] = field(default_factory=dict)
    admin: bool = False  # send the admin's JWT
    setup: str | None = None  # SQL run as the database owner before the workload (it stays for those after)

    def request_headers(self, fx: Fixture) -> dict[str, str]:
        h = dict(self.headers)
        if self.body is not None:
            h["Content-Type"] = "application/json"
        if self.admin:
            h["Authorization"] = f"Bearer {fx.admin_token}"
        return h

    def body_for(self, fx: Fixture) -> str | None:
        if self.key == "W6":  # credentials exist only once the database is seeded
            return json.dumps({"email": fx.user_email, "password": fx.user_password})
        return self.body


JSON = "application/json"
REFRESH = """
select internal.refresh_rollups(now());
select internal.refresh_view_totals();
analyze internal.offer_view_totals;
"""
DRAFTS = """
update api.offers set status = 'draft'
where id in (select id from api.offers order by created_at desc limit (select count(*) / 5 from api.offers))
  and id not in (select id from bench.ids);
analyze api.offers;
"""
WORKLOADS = [
    Workload("W1", "list active offers", "GET", "/offers?status=eq.active&order=created_at.desc&limit=20"),
    Workload("W2", "one offer by id", "GET", "/offers?id=eq.{id}",
             headers={"Accept": "application/vnd.pgrst.object+json"}),
    Workload("W3", "full-text search, first page", "GET", "/rpc/search_offers?search_term={term}&limit=20"),
    Workload("W4", "record a view", "POST", "/rpc/log_event",
             body='{"event_type": "offer_view", "event_data": {"offer_id": "{id}"}}'),
    Workload("W5", "admin update", "PATCH", "/offers?id=eq.{id}", admin=True,
             body='{"metadata": {"expiry_date": "2027-03-31", "bonus_tiers": [{"min": 1000, "bonus": 200}, '
                  '{"min": 5000, "bonus": 400}], "days_to_qualify": 90, "referral": true}}'),
    Workload("W6", "login (bcrypt)", "POST", "/rpc/login", body=""),
    # the rollups and the per-offer totals refreshed first, as pg_cron does every 5 minutes (W4 just logged
    # tens of thousands of views): the list then reads the totals plus the views since
    Workload("W7", "top viewed offers", "GET", "/offer_view_counts?limit=10", admin=True, setup=REFRESH),
    # last: an admin imported a batch, so the newest 20 % of offers are drafts (the bench's sample ids stay
    # active); the listing must not walk past them
    Workload("W1D", "list active, newest 20 % drafts", "GET", "/offers?status=eq.active&order=created_at.desc&limit=20",
             setup=DRAFTS),
]


def fill(text: str, sample_id: str, term: str) -> str:
    return text.replace("{id}", sample_id).replace("{term}", urllib.parse.quote(term, safe=""))


def send_sample(base: str, w: Workload, fx: Fixture, sample_id: str, term: str) -> int:
    """Send one request of the workload (the SQL capture's trigger); returns the HTTP status."""
    body = w.body_for(fx)
    data = fill(body, sample_id, term).encode() if body is not None else None
    req = urllib.request.Request(base + fill(w.path, sample_id, term), data=data, method=w.method,
                                 headers=w.request_headers(fx))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
