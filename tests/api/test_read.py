"""Reading: filters, select, order, ranges, counts, representations (exact statuses, headers, bodies)."""

from __future__ import annotations

import json

import pytest


def ids(resp) -> list[int]:
    return [r["id"] for r in resp.json()]


def test_plain_read_headers_and_body(http):
    r = http.get("/authors?select=id,name&id=lte.2&order=id")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["content-range"] == "0-1/*"
    assert r.headers["content-location"] == "/authors?id=lte.2&order=id&select=id,name"
    assert r.json() == [{"id": 1, "name": "Ursula Le Guin"}, {"id": 2, "name": "Stanislaw Lem"}]
    assert int(r.headers["content-length"]) == len(r.content)


@pytest.mark.parametrize("value", ["a%0Ab", "a%0D%0AX-Forged:%201", "%7F", "caf%C3%A9"])
def test_content_location_carries_no_raw_control_or_non_ascii_bytes(http, value):
    """The query is echoed decoded; a CR/LF there made the server drop the whole response."""
    r = http.get(f"/authors?select=id&name=eq.{value}")
    assert r.status_code == 200 and r.json() == []
    location = r.headers["content-location"]
    assert location.isascii() and all(32 < ord(c) < 127 for c in location)
    assert "x-forged" not in r.headers


def test_default_select_keeps_column_order(http):
    r = http.get("/authors?id=eq.1")
    assert list(r.json()[0]) == ["id", "name", "country"]


@pytest.mark.parametrize(("query", "expected"), [
    ("id=eq.3", [3]),
    ("id=neq.3&id=lt.5", [1, 2, 4]),
    ("year=gt.1970", [2, 4]),
    ("year=gte.1972", [2, 4]),
    ("pages=lt.200", [4]),
    ("pages=lte.204", [3, 4]),
    ("title=like.*Dis*", [2]),
    ("title=ilike.*CITIES", [4]),
    ("title=match.^The", [1, 2, 5]),
    ("title=imatch.^the c", [5]),
    ("id=in.(1,3,5)", [1, 3, 5]),
    ("id=in.()", []),
    ("title=in.(\"Solaris\",\"The Cyberiad\")", [3, 5]),
    ("year=is.null", [5]),
    ("year=not.is.null", [1, 2, 3, 4]),
    ("year=is.not_null", [1, 2, 3, 4]),
    ("year=isdistinct.1969", [2, 3, 4, 5]),
    ("tsv=fts.ocean", [3]),
    ("tsv=fts(english).robots", [5]),
    ("tsv=plfts.left hand", [1]),
    ("tsv=phfts(english).left hand", [1]),
    ("tsv=wfts.dispossessed", [2]),
    ("title=fts(english).cities", [4]),
    ("tags=cs.{scifi}", [1, 2, 3]),
    ("tags=cd.{scifi,classic,fable}", [1, 3, 4, 5]),
    ("tags=ov.{fable,utopia}", [2, 4]),
    ("meta=cs.{\"lang\":\"pl\"}", [3, 5]),
    ("during=ov.[1965,1966]", [1, 3]),
    ("during=sl.[1990,2000]", [1, 2, 3, 4]),
    ("during=sr.[1900,1950]", [1, 2, 3, 4]),
    ("during=nxr.[1900,1971)", [1, 3]),
    ("during=nxl.[1965,1990]", [2, 4]),
    ("during=adj.[1980,1990)", [2, 4]),
    ("id=not.eq.1&id=not.in.(2,3)", [4, 5]),
    ("title=like(any).{*Cities,Sol*}", [3, 4]),
    ("id=gt(all).{1,2}", [3, 4, 5]),
    ("id=eq(any).{2,4}", [2, 4]),
    ("meta->>lang=eq.pl", [3, 5]),
    ("meta->n=gt.1", [2, 3]),
    ("meta->awards->>0=eq.hugo", [1]),
    ("or=(year.lt.1965,and(pages.gt.300,year.gt.1970))", [2, 3]),
    ("not.or=(id.eq.1,id.eq.2)", [3, 4, 5]),
    ("or=(title.eq.\"Solaris\",id.in.(4,5))", [3, 4, 5]),
    ("and=(id.gt.1,or(id.eq.2,id.not.lt.5))", [2, 5]),
    ("or=(tags.cs.{fable},year.is.null)", [4, 5]),
])
def test_filters(http, query, expected):
    r = http.get(f"/books?select=id&order=id&{query}")
    assert r.status_code == 200, r.text
    assert ids(r) == expected


def test_select_rename_cast_and_json_paths(http):
    r = http.get("/books?select=id,label:title,pages::text,meta->>lang,n:meta->n,meta->awards->0,price&id=eq.1")
    assert r.json() == [{"id": 1, "label": "The Left Hand of Darkness", "pages": "304", "lang": "en", "n": 1,
                         "awards": "hugo", "price": 9.99}]


def test_order_nulls_and_desc(http):
    assert ids(http.get("/books?select=id&order=year.desc.nullslast")) == [2, 4, 1, 3, 5]
    assert ids(http.get("/books?select=id&order=year.asc.nullsfirst")) == [5, 3, 1, 4, 2]
    assert ids(http.get("/books?select=id&order=author_id.desc,id.desc")) == [4, 5, 3, 2, 1]
    assert ids(http.get("/books?select=id&order=meta->>n.desc.nullslast,id")) == [3, 2, 1, 4, 5]


def test_limit_offset(http):
    r = http.get("/books?select=id&order=id&limit=2&offset=1")
    assert (ids(r), r.headers["content-range"]) == ([2, 3], "1-2/*")
    r = http.get("/books?select=id&limit=0")
    assert (r.status_code, r.json(), r.headers["content-range"]) == (200, [], "*/*")


def test_range_header_and_count(http):
    r = http.get("/books?select=id&order=id", headers={"Range": "1-2", "Prefer": "count=exact"})
    assert r.status_code == 206
    assert ids(r) == [2, 3]
    assert r.headers["content-range"] == "1-2/5"
    assert r.headers["preference-applied"] == "count=exact"
    r = http.get("/books?select=id&order=id", headers={"Range": "3-"})
    assert (r.status_code, ids(r), r.headers["content-range"]) == (200, [4, 5], "3-4/*")
    r = http.get("/books?select=id", headers={"Range": "garbage"})
    assert r.status_code == 200 and len(r.json()) == 5


def test_full_count_is_200(http):
    r = http.get("/books?select=id", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (200, "0-4/5")
    r = http.get("/books?select=id&id=gt.100", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"], r.json()) == (200, "*/0", [])


def test_range_not_satisfiable(http):
    r = http.get("/books?select=id&offset=10", headers={"Prefer": "count=exact"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "*/5"
    assert r.json() == {"code": "PGRST103", "details": "An offset of 10 was requested, but there are only 5 rows.",
                        "hint": None, "message": "Requested range not satisfiable"}
    r = http.get("/books", headers={"Range": "5-2"})
    assert r.status_code == 416
    assert r.json()["details"] == ("The lower boundary must be lower than or equal to the upper boundary in "
                                   "the Range header.")
    r = http.get("/books?limit=-1")
    assert (r.status_code, r.json()["details"]) == (416, "Limit should be greater than or equal to zero.")


def test_planned_and_estimated_counts(http):
    r = http.get("/books?select=id", headers={"Prefer": "count=planned"})
    assert r.status_code in (200, 206)
    assert r.headers["preference-applied"] == "count=planned"
    assert r.headers["content-range"].split("/")[1].isdigit()
    r = http.get("/books?select=id", headers={"Prefer": "count=estimated"})
    assert r.headers["content-range"] == "0-4/5"


def test_counts_on_rls_tables_are_exact_whatever_was_asked(as_user, sql):
    """A planner estimate would count rows the policy hides (other owners' secrets); only exact is honest."""
    sql("insert into test.secrets select 1000 + g, 'mallory', 'x' from generate_series(1, 300) g "
        "on conflict do nothing")
    sql("analyze test.secrets")
    try:
        for asked in ("planned", "estimated"):
            r = as_user.get("/secrets?select=id&owner=eq.mallory", headers={"Prefer": f"count={asked}"})
            assert r.status_code == 200 and r.json() == []
            assert r.headers["content-range"] == "*/0"
            assert r.headers["preference-applied"] == "count=exact"
    finally:
        sql("delete from test.secrets where id > 1000")


def test_max_rows_caps_reads(http, sql):
    sql("insert into test.logs select 'bulk', g from generate_series(1, 150) g")
    try:
        r = http.get("/logs?msg=eq.bulk", headers={"Prefer": "count=exact"})
        assert r.status_code == 206
        assert len(r.json()) == 100
        assert r.headers["content-range"] == "0-99/150"
    finally:
        sql("delete from test.logs where msg = 'bulk'")


def test_singular(http):
    r = http.get("/authors?id=eq.1", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert r.json() == {"id": 1, "name": "Ursula Le Guin", "country": "US"}
    for query, n in (("id=gt.1", 3), ("id=gt.100", 0)):
        r = http.get(f"/authors?{query}", headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.status_code == 406
        assert r.text == ('{"code":"PGRST116","details":"The result contains %d rows","hint":null,'
                          '"message":"Cannot coerce the result to a single JSON object"}' % n)


def test_stripped_nulls(http):
    r = http.get("/authors?id=eq.4", headers={"Accept": "application/vnd.pgrst.array+json;nulls=stripped"})
    assert r.json() == [{"id": 4, "name": "Nobody"}]


def test_csv(http):
    r = http.get("/authors?order=id", headers={"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text == 'id,name,country\n1,"Ursula Le Guin",US\n2,"Stanislaw Lem",PL\n3,"Italo Calvino",IT\n4,Nobody,'
    r = http.get("/authors?id=gt.100", headers={"Accept": "text/csv"})
    assert r.text == "\n"


def test_unknown_media_type(http):
    r = http.get("/authors", headers={"Accept": "text/unknowntype"})
    assert r.status_code == 406
    assert r.headers["content-length"] == "116"
    assert r.text == ('{"code":"PGRST107","details":null,"hint":null,'
                      '"message":"None of these media types are available: text/unknowntype"}')
    assert r.headers["proxy-status"] == "PostgREST; error=PGRST107"


def test_head(http):
    r = http.head("/authors?id=eq.1")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-range"] == "0-0/*"


def test_views_are_readable(http):
    assert http.get("/book_titles?id=eq.3").json() == [{"id": 3, "title": "Solaris", "author_id": 2}]


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/nope", 404, {"code": "PGRST205", "details": None, "hint": None,
                    "message": "Could not find the table 'test.nope' in the schema cache"}),
    ("/author", 404, {"code": "PGRST205", "details": None, "hint": "Perhaps you meant the table 'test.authors'",
                      "message": "Could not find the table 'test.author' in the schema cache"}),
    ("/a/b", 404, {"code": "PGRST125", "details": None, "hint": None,
                   "message": "Invalid path specified in request URL"}),
    ("/authors?id=0", 400, {"code": "PGRST100",
                            "details": "unexpected \"0\" expecting \"not\" or operator (eq, gt, ...)", "hint": None,
                            "message": "\"failed to parse filter (0)\" (line 1, column 1)"}),
    ("/authors?id=eq.abc", 400, {"code": "22P02", "details": None, "hint": None,
                                 "message": "invalid input syntax for type integer: \"abc\""}),
    ("/authors?select=foo", 400, {"code": "42703", "details": None, "hint": None,
                                  "message": "column authors.foo does not exist"}),
    ("/authors?foo=eq.1", 400, {"code": "42703", "details": None, "hint": None,
                                "message": "column authors.foo does not exist"}),
    ("/private_stuff", 401, {"code": "42501", "details": None, "hint": None,
                             "message": "permission denied for table private_stuff"}),
])
def test_read_errors(http, path, status, body):
    r = http.get(path)
    assert r.status_code == status
    assert r.json() == body
    assert r.headers["proxy-status"] == f"PostgREST; error={body['code']}"
    assert r.text == json.dumps(body, separators=(",", ":"), sort_keys=True)


@pytest.mark.parametrize("query", [
    "order=id.asc.nullslasttt", "select=id,", "or=(id.eq.1", "id=is.maybe", "limit=x", "id=like(any).x",
    "select=a(b", "or=id.eq.1", "id=in.1,2", "offset=-1",
])
def test_parse_errors_are_400(http, query):
    r = http.get(f"/authors?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "PGRST100"
