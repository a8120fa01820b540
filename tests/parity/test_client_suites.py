"""Gaps the official client libraries' own suites found (postgrest-js against its Supabase fixture): partitions
in the exposed schema, a list in PGRST_DB_EXTRA_SEARCH_PATH, a single unnamed parameter named by the key "",
PGRST203's candidate list, and the "Perhaps you meant" hints. Their own database and gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support import gateway_process, with_database, with_login

DB = "parity_clients"
FIXTURE = """
create role pc_authenticator login noinherit password 'pc_authenticator';
create role pc_anon nologin;
grant pc_anon to pc_authenticator;
create schema pc;
create schema "pc extras";
grant usage on schema pc, "pc extras" to pc_anon;
-- a partitioned table: the parent is exposed, its partitions are not (and must not break the schema cache)
create table pc.events (id int, at date, kind text, primary key (id, at)) partition by range (at);
create table pc.events_2024 partition of pc.events for values from ('2024-01-01') to ('2025-01-01');
insert into pc.events values (1, '2024-05-01', 'signup');
create function pc.kind_upper(pc.events) returns text language sql stable as 'select upper($1.kind)';
create function pc.search_path_seen() returns text language sql stable as $$ select current_setting('search_path') $$;
create function "pc extras".in_extras() returns int language sql immutable as 'select 7';
set check_function_bodies = off;  -- resolved at call time, through the request's search_path
create function pc.via_extras() returns int language sql stable as 'select in_extras()';
reset check_function_bodies;
-- single unnamed parameters: text is callable (named by the key ""), integer is not
create function pc.unnamed_text(text) returns text language sql as 'select $1';
create function pc.unnamed_integer(int) returns int language sql as 'select $1';
-- overloads PostgREST cannot choose between
create function pc.by_default() returns int language sql as 'select 1';
create function pc.by_default(text default 'x') returns text language sql as 'select $1';
create function pc.by_type(a text) returns int language sql as 'select 1';
create function pc.by_type(a int) returns text language sql as $$ select 'foo' $$;
create function pc.named(alpha int, beta int) returns int language sql as 'select alpha + beta';
create table pc.users (id int primary key, name text);
create table pc.posts (id int primary key, user_id int references pc.users, body text);
create function pc.author_row(pc.posts) returns setof pc.users rows 1 language sql stable
  as 'select * from pc.users where id = $1.user_id';
grant select on all tables in schema pc to pc_anon;
"""


@pytest.fixture(scope="module")
def gw(superuser_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DB} with (force)")
        conn.execute("drop role if exists pc_authenticator")
        conn.execute("drop role if exists pc_anon")
        conn.execute(f"create database {DB}")
    url = with_database(superuser_dsn, DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FIXTURE)
    env = {"PGRST_DB_URI": with_login(url, "pc_authenticator", "pc_authenticator", DB), "PGRST_DB_SCHEMAS": "pc",
           "PGRST_DB_ANON_ROLE": "pc_anon", "PGRST_DB_POOL": "2",
           "PGRST_DB_EXTRA_SEARCH_PATH": "public, pc extras"}
    folder: Path = tmp_path_factory.mktemp("parity-clients")
    with gateway_process(env, folder / "gateway.log", module="referral_service.gateway.server",
                         ready_path="/events?limit=0") as proc, httpx.Client(base_url=proc.url, timeout=10) as c:
        yield c


def test_partitions_stay_out_of_the_schema_cache(gw):
    assert gw.get("/events?select=id,kind,kind_upper").json() == [{"id": 1, "kind": "signup", "kind_upper": "SIGNUP"}]
    r = gw.get("/events_2024")
    assert r.status_code == 404
    assert r.json() == {"code": "PGRST205", "details": None, "hint": "Perhaps you meant the table 'pc.events'",
                        "message": "Could not find the table 'pc.events_2024' in the schema cache"}


def test_extra_search_path_is_a_list_of_schemas(gw):
    assert gw.get("/rpc/search_path_seen").json() == '"pc", "public", "pc extras"'
    assert gw.get("/rpc/via_extras").json() == 7


def test_single_unnamed_parameter_named_by_the_empty_key_takes_the_whole_body(gw):
    body = '{"": "hello"}'
    r = gw.post("/rpc/unnamed_text", content=body, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (200, body)  # the body as sent, not re-encoded


def test_an_unnamed_integer_parameter_is_invisible_and_not_suggested(gw):
    r = gw.post("/rpc/unnamed_integer", json={"": 1})
    assert r.status_code == 404
    assert r.json() == {
        "code": "PGRST202",
        "details": "Searched for the function pc.unnamed_integer with parameter  or with a single unnamed "
                   "json/jsonb parameter, but no matches were found in the schema cache.",
        "hint": "Perhaps you meant to call the function pc.unnamed_text",
        "message": "Could not find the function pc.unnamed_integer() in the schema cache"}


def test_ambiguous_overloads_are_listed_with_their_parameters(gw):
    r = gw.post("/rpc/by_default", json={})
    assert r.status_code == 300
    assert r.json() == {
        "code": "PGRST203", "details": None,
        "hint": "Try renaming the parameters or the function itself in the database so function overloading can be "
                "resolved",
        "message": "Could not choose the best candidate function between: pc.by_default(), pc.by_default( => text)"}
    r = gw.post("/rpc/by_type", json={"a": 1})
    assert (r.status_code, r.json()["message"]) == (
        300, "Could not choose the best candidate function between: pc.by_type(a => integer), pc.by_type(a => text)")


def test_hint_for_an_existing_function_names_its_parameters(gw):
    r = gw.post("/rpc/named", json={"alpha": 1, "bet": 2})
    assert r.status_code == 404
    assert r.json()["hint"] == "Perhaps you meant to call the function pc.named(alpha, beta)"
    assert gw.post("/rpc/named", json={"zzzzzzzzzzzzzzzz": 1}).json()["hint"] is None


def test_embed_hint_suggests_tables_never_a_computed_relationships_function(gw):
    r = gw.get("/posts?select=id,author_rowx(*)")
    assert r.status_code == 400
    assert r.json()["code"] == "PGRST200"
    assert r.json()["hint"] is None
