"""Unit tests of the pure parsers: query-string grammar, Prefer, Accept, Range, JWT, errors, SQL text."""

from __future__ import annotations

import doctest
import time

import jwt
import pytest
from hypothesis import given, settings, strategies as st

from referral_service.gateway import errors, grammar, query, request
from referral_service.gateway.auth import Authenticator
from referral_service.gateway.grammar import Field, Filter, JsonStep, Logic, OrderTerm, SelectEmbed, SelectField, Star

SECRET = "x" * 32


def test_doctests():
    assert doctest.testmod(grammar).failed == 0


def test_filter_values():
    f = grammar.parse_filter_value("name", "like(any).{a*,b*}")
    assert f == Filter(Field("name"), False, "like", "any", None, "{a*,b*}")
    f = grammar.parse_filter_value("tsv", "not.fts(french).amusant")
    assert (f.negated, f.op, f.lang, f.value) == (True, "fts", "french", "amusant")
    f = grammar.parse_filter_value("data->a->>b", "eq.1")
    assert f.field == Field("data", (JsonStep("->", "a"), JsonStep("->>", "b")))
    assert grammar.parse_filter_value("x", 'in.("a,b",c,"d\\"e")').value == ("a,b", "c", 'd"e')
    assert grammar.parse_filter_value("x", "in.()").value == ()
    assert grammar.parse_filter_value("x", "is.NULL").value == "null"
    assert grammar.parse_filter_value("x", "eq.a.b.c").value == "a.b.c"


def test_logic_trees():
    t = grammar.parse_logic("or", False, "(a.eq.1,not.and(b.gte.1,b.lte.9),c.in.(1,2),d.eq.\"x,y\")")
    assert isinstance(t, Logic) and t.op == "or" and len(t.children) == 4
    inner = t.children[1]
    assert isinstance(inner, Logic) and inner.negated and inner.op == "and"
    assert t.children[2].value == ("1", "2")
    assert t.children[3].value == "x,y"


def test_select():
    items = grammar.parse_select("id,full:name,salary::text,data->a->>b,au:authors!fk!inner(name,books(*)),*")
    assert items[0] == SelectField(Field("id"), None, None)
    assert items[1] == SelectField(Field("name"), "full", None)
    assert items[2] == SelectField(Field("salary"), None, "text")
    assert items[3].field.path[-1] == JsonStep("->>", "b")
    emb = items[4]
    assert isinstance(emb, SelectEmbed) and (emb.name, emb.alias, emb.hint, emb.inner) == ("authors", "au", "fk", True)
    assert emb.items[1] == SelectEmbed("books", None, None, False, (Star(),))
    assert items[5] == Star()


def test_order():
    assert grammar.parse_order("a.desc.nullslast,b,c.nullsfirst") == (
        OrderTerm(Field("a"), "desc", "last"), OrderTerm(Field("b"), None, None),
        OrderTerm(Field("c"), None, "first"))


def test_parse_error_shape():
    with pytest.raises(errors.ApiError) as e:
        grammar.parse_filter_value("id", "0")
    assert e.value.body() == (b'{"code":"PGRST100","details":"unexpected \\"0\\" expecting \\"not\\" or operator '
                              b'(eq, gt, ...)","hint":null,"message":"\\"failed to parse filter (0)\\" (line 1, '
                              b'column 1)"}')


def test_prefer_accept_range():
    p = request.parse_prefer(["return=representation, count=exact", "resolution=merge-duplicates,foo"])
    assert (p.ret, p.count, p.resolution, p.invalid) == ("representation", "exact", "merge-duplicates", ["foo"])
    with pytest.raises(errors.ApiError) as e:
        request.parse_prefer(["handling=strict, foo=bar"])
    assert e.value.code == "PGRST122"
    assert request.parse_accept("application/vnd.pgrst.object+json", "relation").kind == "object"
    assert request.parse_accept("text/csv, */*", "relation").kind == "csv"
    assert request.parse_accept(None, "relation").kind == "json"
    with pytest.raises(errors.ApiError) as e:
        request.parse_accept("text/xml", "relation")
    assert e.value.status == 406
    assert request.parse_range("0-9") == (0, 9)
    assert request.parse_range("5-") == (5, None)
    assert request.parse_range("nonsense") is None


def test_target_paths():
    assert request.parse_target("/") == ("root", "")
    assert request.parse_target("/t") == ("relation", "t")
    assert request.parse_target("/rpc/f") == ("rpc", "f")
    with pytest.raises(errors.ApiError) as e:
        request.parse_target("/a/b")
    assert e.value.code == "PGRST125"


def test_status_mapping():
    assert errors.pg_status("42501", "", authed=False) == 401
    assert errors.pg_status("42501", "", authed=True) == 403
    assert errors.pg_status("22023", 'role "x" does not exist', authed=False) == 401
    assert errors.pg_status("22023", "other", authed=False) == 400
    assert errors.pg_status("23505", "", authed=True) == 409
    assert errors.pg_status("25006", "", authed=True) == 405
    assert errors.pg_status("PT418", "", authed=True) == 418
    assert errors.pg_status("57P01", "", authed=True) == 503
    assert errors.pg_status("22P02", "", authed=True) == 400


def test_jwt_verification():
    a = Authenticator(SECRET, "api", "anon", 30)
    assert a.authenticate(None).role == "anon"
    tok = jwt.encode({"role": "u", "aud": ["x", "api"], "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    auth = a.authenticate(f"Bearer {tok}")
    assert (auth.role, auth.authed) == ("u", True)
    assert a.authenticate(f"Bearer {tok}") is auth  # cached
    bad = jwt.encode({"role": "u", "aud": "other"}, SECRET, algorithm="HS256")
    with pytest.raises(errors.ApiError) as e:
        a.authenticate(f"Bearer {bad}")
    assert (e.value.code, e.value.message) == ("PGRST303", "JWT not in audience")


def test_identifier_quoting():
    assert query.ident('we"ird') == '"we""ird"'


# --- hostile input: a parse result or a PostgREST 4xx, never another exception -------------------------

_alphabet = st.sampled_from(list("abc.,()!:*\"\\{}[]->=&%+ 0123456789") + ["not.", "or(", "and(", "eq.", "in.(",
                                                                         "is.", "::", "->>", "fts(", "(any)"])
_hostile = st.lists(_alphabet, max_size=40).map("".join)


def _ok_or_4xx(fn, *args) -> None:
    try:
        fn(*args)
    except errors.ApiError as e:
        assert 400 <= e.status < 500
        e.body()


@settings(max_examples=400, deadline=None)
@given(_hostile, _hostile)
def test_hostile_filters(key, value):
    _ok_or_4xx(grammar.parse_filter_value, key or "k", value)
    _ok_or_4xx(grammar.parse_logic, "or", False, value)


@settings(max_examples=400, deadline=None)
@given(_hostile)
def test_hostile_select_and_order(value):
    _ok_or_4xx(grammar.parse_select, value)
    _ok_or_4xx(grammar.parse_order, value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_hostile_query_strings(path, qs):
    _ok_or_4xx(request.build, "GET", "/" + path, qs, [(b"prefer", qs.encode("utf-8", "replace"))], b"", ["api"])


def test_deep_nesting_is_a_4xx():
    value = "(" + "or(" * 200 + "a.eq.1" + ")" * 200 + ")"
    _ok_or_4xx(grammar.parse_logic, "or", False, value)
    _ok_or_4xx(grammar.parse_select, "a(" * 200 + "b" + ")" * 200)
