"""Transaction end (issue 13 item 5): PGRST_DB_TX_END and `Prefer: tx=`, with Preference-Applied, as PostgREST v13."""

from __future__ import annotations

import itertools

import pytest

_names = itertools.count()


def fresh() -> str:
    return f"tx-{next(_names)}"


def exists(sql, name: str) -> bool:
    return bool(sql("select 1 from ptx.items where name = %s", [name]))


# --- the setting absent: PostgREST's default is `commit`, and `Prefer: tx` is ignored -------------------

def test_default_ignores_tx_rollback_and_does_not_echo_it(default, sql):
    name = fresh()
    r = default.post("/items", json={"name": name}, headers={"Prefer": "tx=rollback, return=representation"})
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "return=representation"
    assert exists(sql, name)  # committed: the override is not allowed by default


def test_default_tx_is_not_invalid_under_strict_handling(default):
    r = default.get("/items?select=name&id=eq.1", headers={"Prefer": "tx=rollback, handling=strict"})
    assert r.status_code == 200
    assert r.headers["preference-applied"] == "handling=strict"


# --- commit-allow-override -----------------------------------------------------------------------------

@pytest.mark.parametrize("prefer, kept", [("tx=rollback", False), ("tx=commit", True), ("", True)])
def test_post_honours_prefer_tx(gw, sql, prefer, kept):
    name = fresh()
    r = gw.post("/items", json={"name": name, "qty": 7},
                headers={"Prefer": ", ".join(p for p in ("return=representation", prefer) if p)})
    assert r.status_code == 201  # the response is computed before the rollback
    assert r.json() == [{"id": r.json()[0]["id"], "name": name, "qty": 7, "note": "none"}]
    applied = "return=representation" + (f", {prefer}" if prefer else "")
    assert r.headers["preference-applied"] == applied
    assert exists(sql, name) is kept


def test_patch_delete_put_roll_back(gw, sql):
    sql("insert into ptx.items (id, name) values (900, 'keep-me') on conflict do nothing")
    r = gw.patch("/items?id=eq.900", json={"qty": 42}, headers={"Prefer": "tx=rollback, count=exact"})
    assert (r.status_code, r.headers["content-range"], r.headers["preference-applied"]) == \
        (204, "0-0/1", "count=exact, tx=rollback")
    r = gw.delete("/items?id=eq.900", headers={"Prefer": "tx=rollback, return=representation"})
    assert r.status_code == 200 and r.json()[0]["name"] == "keep-me"
    r = gw.put("/items?id=eq.901", json={"id": 901, "name": "put-me", "qty": 1, "note": None},
               headers={"Prefer": "return=representation, tx=rollback"})
    assert r.status_code == 201 and r.headers["preference-applied"] == "return=representation, tx=rollback"
    assert sql("select qty from ptx.items where id = 900") == [(1,)]
    assert not sql("select 1 from ptx.items where id = 901")


def test_upsert_under_rollback_reports_as_on_commit(gw, sql):
    r = gw.post("/items?on_conflict=name", json=[{"name": "apple", "qty": 99}],
                headers={"Prefer": "resolution=merge-duplicates, return=representation, tx=rollback"})
    assert r.status_code == 200  # an update of an existing row, as a commit would answer
    assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation, tx=rollback"
    assert r.json()[0]["qty"] == 99
    assert sql("select qty from ptx.items where name = 'apple'") == [(3,)]


def test_rpc_writes_are_undone(gw, sql):
    name = fresh()
    r = gw.post("/rpc/add_item", json={"name": name}, headers={"Prefer": "tx=rollback"})
    assert r.status_code == 200 and r.json()[0]["name"] == name
    assert r.headers["preference-applied"] == "tx=rollback"
    assert not exists(sql, name)
    r = gw.get("/rpc/add_item", params={"name": name}, headers={"Prefer": "tx=rollback"})
    assert r.status_code == 405 or r.json()["code"] == "25006"  # GET is read-only, as in PostgREST


def test_read_echoes_tx(gw):
    r = gw.get("/items?select=name&id=eq.1", headers={"Prefer": "count=exact, tx=commit"})
    assert r.headers["preference-applied"] == "count=exact, tx=commit"
    assert r.json() == [{"name": "apple"}]


def test_deferred_constraints_still_fail_under_rollback(gw, rolling):
    for client in (gw, rolling):
        r = client.post("/rpc/raise_constraint", json={"deferred": True}, headers={"Prefer": "tx=rollback"})
        assert r.status_code == 409
        assert r.json()["code"] == "23505"
        assert "preference-applied" not in r.headers  # errors never carry it


def test_singular_failure_rolls_back_without_preference(gw, sql):
    name = fresh()
    r = gw.post("/items", json=[{"name": name}, {"name": name + "b"}],
                headers={"Prefer": "tx=commit, return=representation", "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    assert "preference-applied" not in r.headers
    assert not exists(sql, name)


def test_commit_allow_override_with_singular_success(gw, sql):
    name = fresh()
    r = gw.post("/items", json={"name": name}, headers={
        "Prefer": "tx=rollback, return=representation", "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 201 and r.json()["name"] == name
    assert not exists(sql, name)


# --- rollback (no override) ----------------------------------------------------------------------------

def test_rollback_setting_undoes_everything_and_ignores_tx_commit(rolling, sql):
    name = fresh()
    r = rolling.post("/items", json={"name": name}, headers={"Prefer": "tx=commit, return=representation"})
    assert r.status_code == 201 and r.json()[0]["name"] == name
    assert r.headers["preference-applied"] == "return=representation"
    assert not exists(sql, name)
    r = rolling.get("/rpc/count_items")
    assert r.status_code == 200


def test_bad_setting_stops_startup(ptx_db, tmp_path):
    from tests.parity_tx.conftest import _env, _gateway

    with pytest.raises(RuntimeError, match="Invalid transaction termination. Check your configuration."):
        with _gateway(_env(ptx_db, PGRST_DB_TX_END="sometimes"), tmp_path):
            pass
