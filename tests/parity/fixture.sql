-- Fixture of the parity tests (issue 13 items 1-4): the relationship shapes PostgREST's own test suite
-- exercises (FK column names, constraint names, self references, circular FKs, one-to-one, junctions,
-- views, computed fields and relationships, aggregates and spreads), in a schema of our own.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'parity_authenticator') then
    create role parity_authenticator login noinherit password 'parity_authenticator';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'parity_anon') then
    create role parity_anon nologin;
  end if;
end $$;
grant parity_anon to parity_authenticator;

create schema parity;
create schema hidden;  -- not exposed
grant usage on schema parity to parity_anon;

create table parity.clients (id int primary key, name text not null);
create table parity.projects (
  id int primary key, name text not null,
  client_id int constraint projects_client_fk references parity.clients(id)
);
create table parity.tasks (id int primary key, name text not null, project_id int references parity.projects(id));
create table parity.users (id int primary key, first text not null, last text not null);
-- a junction: both FKs inside its primary key
create table parity.users_tasks (
  user_id int references parity.users(id), task_id int references parity.tasks(id),
  primary key (user_id, task_id)
);
-- not a junction: its FKs are not inside a primary key
create table parity.assignments (user_id int references parity.users(id), task_id int references parity.tasks(id));
create view parity.projects_view as select id, name, client_id from parity.projects;

-- self reference
create table parity.family (id int primary key, name text not null, parent_id int references parity.family(id));
-- two FKs to the same table
create table parity.addresses (id int primary key, city text not null);
create table parity.orders (
  id int primary key,
  billing int constraint orders_billing_fk references parity.addresses(id),
  shipping int constraint orders_shipping_fk references parity.addresses(id)
);
-- circular FKs
create table parity.agents (id int primary key, name text not null);
create table parity.departments (id int primary key, name text not null, head_id int references parity.agents(id));
alter table parity.agents add column department_id int references parity.departments(id);
-- one-to-one: the FK is also unique / the primary key
create table parity.countries (id int primary key, name text not null);
create table parity.capitals (id int primary key, name text not null,
                              country_id int unique references parity.countries(id));
create table parity.country_stats (country_id int primary key references parity.countries(id), people bigint);

-- aggregates and spreads
create table parity.invoices (
  id int primary key, project_id int references parity.projects(id), total numeric(10, 2) not null,
  kind text not null, meta jsonb
);
create table parity.categories (id int primary key, name text not null);
create table parity.factories (id int primary key, name text not null);
create table parity.processes (
  id int primary key, name text not null, factory_id int references parity.factories(id),
  category_id int references parity.categories(id)
);
create table parity.process_costs (process_id int primary key references parity.processes(id), cost numeric not null);
create table parity.odd_names (id int primary key, "column whitespace" text, "quote""d" text);

-- computed fields (a function of the row returning a scalar) and computed relationships
create function parity.full_name(parity.users) returns text language sql stable
  as $$ select $1.first || ' ' || $1.last $$;
create function parity.total_cents(parity.invoices) returns bigint language sql stable
  as $$ select ($1.total * 100)::bigint $$;
create function parity.owner(parity.projects) returns setof parity.clients rows 1 language sql stable
  as $$ select * from parity.clients where id = $1.client_id $$;
create function parity.all_projects(parity.clients) returns setof parity.projects language sql stable
  as $$ select * from parity.projects where client_id = $1.id $$;
-- named like the target table: replaces the FK relationship projects -> clients... of tasks -> projects
create function parity.projects(parity.tasks) returns setof parity.projects rows 1 language sql stable
  as $$ select * from parity.projects where id = $1.project_id + 1 $$;
create function parity.client_projects(c int) returns setof parity.projects language sql stable
  as $$ select * from parity.projects where client_id = c $$;

insert into parity.clients values (1, 'Microsoft'), (2, 'Apple'), (3, 'Nobody');
insert into parity.projects values (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2),
                                   (5, 'Orphan', null);
insert into parity.tasks values (1, 'Design w7', 1), (2, 'Code w7', 1), (3, 'Design w10', 2), (4, 'Code w10', 2),
                                (5, 'Design IOS', 3), (6, 'Code IOS', 3), (7, 'Design OSX', 4);
insert into parity.users values (1, 'Angela', 'Martin'), (2, 'Michael', 'Scott'), (3, 'Dwight', 'Schrute');
insert into parity.users_tasks values (1, 1), (1, 2), (1, 3), (2, 5), (2, 6), (3, 1);
insert into parity.assignments values (1, 1);
insert into parity.family values (1, 'Grandma', null), (2, 'Mum', 1), (3, 'Aunt', 1), (4, 'Kid', 2);
insert into parity.addresses values (1, 'Paris'), (2, 'Lyon');
insert into parity.orders values (1, 1, 2), (2, 2, null);
insert into parity.agents values (1, 'Ann', null), (2, 'Bob', null);
insert into parity.departments values (1, 'Sales', 1), (2, 'Ops', 2);
update parity.agents set department_id = 1;
insert into parity.countries values (1, 'France'), (2, 'Peru'), (3, 'Atlantis');
insert into parity.capitals values (1, 'Paris', 1), (2, 'Lima', 2);
insert into parity.country_stats values (1, 68000000), (2, 34000000);
insert into parity.invoices values
  (1, 1, 100, 'a', '{"n": 1}'), (2, 1, 200, 'b', '{"n": 2}'), (3, 2, 50, 'a', '{"n": 3}'),
  (4, 3, 1000, 'a', '{"n": 4}'), (5, 3, 3000, 'b', null);
insert into parity.categories values (1, 'Batch'), (2, 'Mass');
insert into parity.factories values (1, 'Factory A'), (2, 'Factory B'), (3, 'Empty');
insert into parity.processes values (1, 'Process A1', 1, 1), (2, 'Process A2', 1, 2), (3, 'Process B1', 2, 1),
                                    (4, 'Process B2', 2, 1);
insert into parity.process_costs values (1, 150), (2, 200), (3, 180);
insert into parity.odd_names values (1, 'white space', 'quoted'), (2, 'other', null);

grant select on all tables in schema parity to parity_anon;
grant execute on all functions in schema parity to parity_anon;
