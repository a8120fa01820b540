"""Compatibility with a real third-party client: Supabase's `postgrest` package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError


@pytest.fixture
def client(gateway, sql) -> Iterator[SyncPostgrestClient]:
    sql("truncate test.items restart identity")
    token = gateway.token(role="gw_user", sub="alice")
    with SyncPostgrestClient(gateway.url, schema="test", headers={"Authorization": f"Bearer {token}"}) as c:
        yield c
    sql("truncate test.items restart identity")


def test_select_filters_order_range(client):
    res = client.from_("books").select("id,title").gt("year", 1965).order("year", desc=True).range(0, 1).execute()
    assert res.data == [{"id": 2, "title": "The Dispossessed"}, {"id": 4, "title": "Invisible Cities"}]
    res = client.from_("books").select("id", count="exact").in_("id", [1, 2, 3]).execute()
    assert res.count == 3
    res = client.from_("books").select("id").ilike("title", "%solaris%").execute()
    assert res.data == [{"id": 3}]
    res = client.from_("books").select("id").contains("tags", ["scifi", "utopia"]).execute()
    assert res.data == [{"id": 2}]
    res = client.from_("books").select("id").is_("year", "null").execute()
    assert res.data == [{"id": 5}]
    res = client.from_("authors").select("name,books!books_author_id_fkey(title)").eq("id", 3).execute()
    assert res.data == [{"name": "Italo Calvino", "books": [{"title": "Invisible Cities"}]}]


def test_single(client):
    assert client.from_("authors").select("name").eq("id", 2).single().execute().data == {"name": "Stanislaw Lem"}
    with pytest.raises(APIError) as err:
        client.from_("authors").select("name").gt("id", 1).single().execute()
    assert err.value.code == "PGRST116"


def test_insert_upsert_update_delete(client):
    res = client.from_("items").insert({"name": "a", "qty": 2}).execute()
    assert res.data == [{"id": 1, "name": "a", "qty": 2, "note": "none"}]
    res = client.from_("items").insert([{"name": "b"}, {"name": "c", "qty": 5}], default_to_null=False).execute()
    assert [(x["name"], x["qty"]) for x in res.data] == [("b", 1), ("c", 5)]
    res = client.from_("items").upsert({"id": 1, "name": "a", "qty": 9}).execute()
    assert res.data[0]["qty"] == 9
    res = client.from_("items").upsert({"name": "b", "qty": 7}, on_conflict="name").execute()
    assert res.data[0]["id"] == 2 and res.data[0]["qty"] == 7
    res = client.from_("items").update({"note": "changed"}).eq("id", 3).execute()
    assert res.data == [{"id": 3, "name": "c", "qty": 5, "note": "changed"}]
    res = client.from_("items").delete().eq("id", 3).execute()
    assert [x["id"] for x in res.data] == [3]
    assert [x["id"] for x in client.from_("items").select("id").order("id").execute().data] == [1, 2]


def test_rpc(client):
    assert client.rpc("add", {"a": 2, "b": 40}).execute().data == 42
    res = client.rpc("books_by", {"author": 1}).select("id").execute()
    assert res.data == [{"id": 1}, {"id": 2}]


def test_errors_surface(client):
    with pytest.raises(APIError) as err:
        client.from_("nope").select("*").execute()
    assert err.value.code == "PGRST205"
