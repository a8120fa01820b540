"""Every way PostgREST names an embed (issue 13 item 3), its errors (PGRST200/201/108/118, 42712, 42703 with
the embedded alias), empty embeds, related order and double-quoted names (items 7 and 9)."""

from __future__ import annotations

import json

import pytest


def body(r):
    return json.loads(r.text)


@pytest.mark.parametrize(("query", "expected"), [
    # by the FK column, by the constraint name, by table with a column or constraint hint
    ("/projects?select=id,client_id(name)&id=eq.1", [{"id": 1, "client_id": {"name": "Microsoft"}}]),
    ("/projects?select=id,projects_client_fk(name)&id=eq.1", [{"id": 1, "projects_client_fk": {"name": "Microsoft"}}]),
    ("/projects?select=id,c:clients!client_id(name)&id=eq.1", [{"id": 1, "c": {"name": "Microsoft"}}]),
    ("/projects?select=id,clients!id(name)&id=eq.1", [{"id": 1, "clients": {"name": "Microsoft"}}]),
    ("/projects?select=id,clients!projects_client_fk!inner(name)&id=eq.5", []),
    ("/projects?select=id,clients!inner!projects_client_fk(name)&id=eq.5", []),
    # one-to-many by the constraint name and by the referenced column
    ("/clients?select=name,projects_client_fk(name)&id=eq.2",
     [{"name": "Apple", "projects_client_fk": [{"name": "IOS"}, {"name": "OSX"}]}]),
    ("/clients?select=name,id(name)&id=eq.2", [{"name": "Apple", "id": [{"name": "IOS"}, {"name": "OSX"}]}]),
    # (projects_view stands in for projects too, but a constraint or column target never reaches a view:
    # else the two above would be ambiguous)
    # two FKs to one table: the hint picks one (constraint or column)
    ("/orders?select=id,addresses!orders_billing_fk(city)&order=id",
     [{"id": 1, "addresses": {"city": "Paris"}}, {"id": 2, "addresses": {"city": "Lyon"}}]),
    ("/orders?select=id,ship:addresses!shipping(city)&order=id",
     [{"id": 1, "ship": {"city": "Lyon"}}, {"id": 2, "ship": None}]),
    ("/addresses?select=city,orders!billing(id)&order=id",
     [{"city": "Paris", "orders": [{"id": 1}]}, {"city": "Lyon", "orders": [{"id": 2}]}]),
    # self reference: the table name gives the children, the FK column the parent, table!fkcol the children
    ("/family?select=name,family(name)&id=eq.1", [{"name": "Grandma", "family": [{"name": "Mum"}, {"name": "Aunt"}]}]),
    ("/family?select=name,parent_id(name,parent_id(name))&id=eq.4",
     [{"name": "Kid", "parent_id": {"name": "Mum", "parent_id": {"name": "Grandma"}}}]),
    ("/family?select=name,kids:family!parent_id(name)&id=eq.2", [{"name": "Mum", "kids": [{"name": "Kid"}]}]),
    # circular FKs: hints choose the direction
    ("/agents?select=name,departments!department_id(name)&id=eq.1",
     [{"name": "Ann", "departments": {"name": "Sales"}}]),
    ("/agents?select=name,departments!head_id(name)&id=eq.2", [{"name": "Bob", "departments": [{"name": "Ops"}]}]),
    # one-to-one (unique FK, FK that is the primary key): an object from both sides
    ("/countries?select=name,capitals(name),country_stats(people)&order=id",
     [{"name": "France", "capitals": {"name": "Paris"}, "country_stats": {"people": 68000000}},
      {"name": "Peru", "capitals": {"name": "Lima"}, "country_stats": {"people": 34000000}},
      {"name": "Atlantis", "capitals": None, "country_stats": None}]),
    ("/capitals?select=name,countries(name)&id=eq.2", [{"name": "Lima", "countries": {"name": "Peru"}}]),
    # many-to-many through the junction (both directions, and by the junction's name as hint)
    ("/users?select=first,tasks(name)&id=eq.2", [{"first": "Michael", "tasks": [{"name": "Design IOS"},
                                                                               {"name": "Code IOS"}]}]),
    ("/tasks?select=name,users!users_tasks(first)&id=eq.1",
     [{"name": "Design w7", "users": [{"first": "Angela"}, {"first": "Dwight"}]}]),
    # views: stand in for their table, by name; a view target needs its name (not a column or constraint)
    ("/projects_view?select=name,client_id(name)&id=eq.1", [{"name": "Windows 7", "client_id": {"name": "Microsoft"}}]),
    ("/clients?select=name,projects_view(name)&id=eq.2",
     [{"name": "Apple", "projects_view": [{"name": "IOS"}, {"name": "OSX"}]}]),
])
def test_ways_to_name_an_embed(http, query, expected):
    r = http.get(query)
    assert r.status_code == 200, r.text
    assert body(r) == expected


def test_ambiguous_embed_lists_candidates_in_postgrest_order(http):
    r = http.get("/agents?select=*,departments(*)")
    assert r.status_code == 300
    assert r.headers["proxy-status"] == "PostgREST; error=PGRST201"
    assert body(r) == {
        "code": "PGRST201",
        "details": [
            {"cardinality": "one-to-many", "embedding": "agents with departments",
             "relationship": "departments_head_id_fkey using agents(id) and departments(head_id)"},
            {"cardinality": "many-to-one", "embedding": "agents with departments",
             "relationship": "agents_department_id_fkey using agents(department_id) and departments(id)"},
        ],
        "hint": "Try changing 'departments' to one of the following: 'departments!departments_head_id_fkey', "
                "'departments!agents_department_id_fkey'. Find the desired relationship in the 'details' key.",
        "message": "Could not embed because more than one relationship was found for 'agents' and 'departments'",
    }
    r = http.get("/addresses?select=orders(*)")
    assert [d["relationship"] for d in body(r)["details"]] == [
        "orders_billing_fk using addresses(id) and orders(billing)",
        "orders_shipping_fk using addresses(id) and orders(shipping)"]


def test_hints_that_pgrst201_suggests_work(http):
    for hint in ("departments!departments_head_id_fkey", "departments!agents_department_id_fkey"):
        assert http.get(f"/agents?select=id,{hint}(name)").status_code == 200


@pytest.mark.parametrize(("query", "details", "hint"), [
    ("/projects?select=id,clientes(*)",
     "Searched for a foreign key relationship between 'projects' and 'clientes' in the schema 'parity', but no "
     "matches were found.", "Perhaps you meant 'clients' instead of 'clientes'."),
    ("/projects?select=id,clients!nope(*)",
     "Searched for a foreign key relationship between 'projects' and 'clients' using the hint 'nope' in the "
     "schema 'parity', but no matches were found.", None),
    # not a junction: its FKs are not inside a primary key
    ("/users?select=id,tasks!assignments(*)",
     "Searched for a foreign key relationship between 'users' and 'tasks' using the hint 'assignments' in the "
     "schema 'parity', but no matches were found.", None),
    # a computed relationship named after the table replaces the FK relationship tasks -> projects
    ("/tasks?select=id,project_id(*)",
     "Searched for a foreign key relationship between 'tasks' and 'project_id' in the schema 'parity', but no "
     "matches were found.", "Perhaps you meant 'projects' instead of 'project_id'."),
    # at depth 2 the origin is the parent embed's relation, not its alias
    ("/clients?select=p:projects(id,clientx(*))",
     "Searched for a foreign key relationship between 'projects' and 'clientx' in the schema 'parity', but no "
     "matches were found.", "Perhaps you meant 'clients' instead of 'clientx'."),
])
def test_no_relationship(http, query, details, hint):
    r = http.get(query)
    assert r.status_code == 400
    b = body(r)
    assert (b["code"], b["details"], b["hint"]) == ("PGRST200", details, hint)
    assert b["message"].startswith("Could not find a relationship between '")


def test_empty_embeds_are_left_out_but_still_filter(http):
    r = http.get("/clients?select=id,projects(),name&order=id")
    assert body(r) == [{"id": 1, "name": "Microsoft"}, {"id": 2, "name": "Apple"}, {"id": 3, "name": "Nobody"}]
    r = http.get("/clients?select=id,projects!inner()&projects.id=eq.3")
    assert body(r) == [{"id": 2}]
    r = http.get("/clients?select=id,projects(tasks()),p:projects(name)&id=eq.2")
    assert body(r) == [{"id": 2, "p": [{"name": "IOS"}, {"name": "OSX"}]}]
    r = http.get("/clients?select=id,projects()&projects=is.null")
    assert body(r) == [{"id": 3}]


def test_same_key_twice_is_42712(http):
    r = http.get("/projects?select=id,clients(id),clients(name)")
    assert r.status_code == 400
    assert r.text == ('{"code":"42712","details":null,"hint":null,'
                      '"message":"table name \\"projects_clients_1\\" specified more than once"}')
    assert http.get("/projects?select=id,a:clients(id),b:clients(name)&id=eq.1").json() == [
        {"id": 1, "a": {"id": 1}, "b": {"name": "Microsoft"}}]


@pytest.mark.parametrize(("query", "message"), [
    ("/clients?select=id,projects(nope)", "column projects_1.nope does not exist"),
    ("/clients?select=id,projects(id,tasks(nope))", "column tasks_2.nope does not exist"),
    ("/clients?select=id,projects(id)&projects.nope=eq.1", "column projects_1.nope does not exist"),
    ("/clients?select=id,projects(id)&projects.order=nope", "column projects_1.nope does not exist"),
    ("/clients?nope=eq.1", "column clients.nope does not exist"),
    ("/projects?select=id,clients(name)&order=clients(id)", "column projects_clients_1.id does not exist"),
])
def test_undefined_columns_name_postgrest_aliases(http, query, message):
    r = http.get(query)
    assert r.status_code == 400
    assert body(r) == {"code": "42703", "details": None, "hint": None, "message": message}


def test_plain_columns_come_before_embeds(http):
    r = http.get("/projects?select=clients(name),id&id=eq.1")
    assert r.text.startswith('[{"id":1,"clients":')


def test_related_order_on_to_one_embeds(http):
    r = http.get("/projects?select=id,clients(name)&order=clients(name).desc.nullsfirst,id")
    assert [p["id"] for p in body(r)] == [5, 1, 2, 3, 4]
    r = http.get("/projects?select=id,c:clients(n:name)&order=c(n).asc,id.desc")
    assert [p["id"] for p in body(r)] == [4, 3, 2, 1, 5]
    r = http.get("/clients?select=id,projects(id,clients(name))&projects.order=clients(name).desc,id.desc&id=eq.1")
    assert [p["id"] for p in body(r)[0]["projects"]] == [2, 1]


@pytest.mark.parametrize(("query", "status", "expected"), [
    ("/clients?select=id,projects(id)&order=projects(id)", 400,
     {"code": "PGRST118", "details": "'clients' and 'projects' do not form a many-to-one or one-to-one relationship",
      "hint": None, "message": "A related order on 'projects' is not possible"}),
    ("/clients?select=id,pros:projects(id)&order=pros(id)", 400,
     {"code": "PGRST118", "details": "'clients' and 'pros' do not form a many-to-one or one-to-one relationship",
      "hint": None, "message": "A related order on 'pros' is not possible"}),
    ("/projects?select=id,clients(id)&order=clientsx(id)", 400,
     {"code": "PGRST108", "details": None, "hint": "Verify that 'clientsx' is included in the 'select' query parameter.",
      "message": "'clientsx' is not an embedded resource in this request"}),
])
def test_related_order_errors(http, query, status, expected):
    r = http.get(query)
    assert r.status_code == status
    assert body(r) == expected


def test_double_quoted_names(http):
    r = http.get('/odd_names?select="column whitespace",q:"quote\\"d"&"column whitespace"=eq.white space')
    assert body(r) == [{"column whitespace": "white space", "q": "quoted"}]
    r = http.get('/odd_names?select=id&order="column whitespace".desc')
    assert body(r) == [{"id": 1}, {"id": 2}]
    r = http.get('/odd_names?select=id&or=("column whitespace".eq.other,id.eq.9)')
    assert body(r) == [{"id": 2}]


def test_embed_filter_with_an_embed_name_filters_a_column(http):
    """Only rel=is.null / rel=not.is.null address the embed (PostgREST never raises PGRST120)."""
    r = http.get("/projects?select=id,client_id(name)&client_id=eq.2")
    assert [p["id"] for p in body(r)] == [3, 4]
    r = http.get("/clients?select=name,projects(id)&projects=not.is.null&order=id")
    assert [c["name"] for c in body(r)] == ["Microsoft", "Apple"]


def test_null_embed_filter_with_exact_count(http):
    r = http.get("/clients?select=name,projects(name)&projects=is.null", headers={"Prefer": "count=exact"})
    assert r.status_code == 200
    assert r.headers["content-range"] == "0-0/1"
