"""The Accept parser on its own (no servers): PostgREST's ranking and canonical names."""

from __future__ import annotations

from referral_service.gateway.accept import negotiate, parse


def mimes(value: str) -> list[str]:
    return [m.mime for m in parse(value)]


def test_ranking_by_q_then_specificity():
    assert mimes("*/*, text/csv") == ["text/csv", "*/*"]
    assert mimes("text/csv;q=0.1, application/json;q=0.9") == ["application/json", "text/csv"]
    assert mimes("text/csv;q=0, application/json") == ["application/json", "text/csv"]  # q=0 only sorts last
    assert mimes("a/b, c/d") == ["a/b", "c/d"]  # equal ranks keep the client's order


def test_canonical_names():
    assert mimes("application/vnd.pgrst.object") == ["application/vnd.pgrst.object+json"]
    assert mimes("application/vnd.pgrst.array+json;nulls=stripped") == ["application/vnd.pgrst.array+json;nulls=stripped"]
    assert mimes("application/vnd.pgrst.array") == ["application/json"]
    assert mimes("Application/VND.pgrst.plan+JSON; for=\"text/csv\"; options=buffers|analyze") == [
        'application/vnd.pgrst.plan+json; for="text/csv"; options=analyze|buffers']
    assert mimes("application/vnd.pgrst.plan; for=text/xml") == [  # unquoted values with "/" are dropped
        'application/vnd.pgrst.plan+text; for="application/json"']
    assert mimes("undefined") == ["undefined"]


def test_plans_only_when_enabled():
    assert negotiate("application/vnd.pgrst.plan", "relation", False)[1] is None
    found = negotiate("application/vnd.pgrst.plan", "relation", True)[1]
    assert found is not None and found.kind == "plan" and found.explain.fmt == "text"
    assert negotiate("application/json", "root", False)[1].kind == "openapi"
    assert negotiate("text/csv", "root", False)[1] is None
