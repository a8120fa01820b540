-- Fixture schema for the gateway's HTTP tests: generic, nothing from the application.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'gw_authenticator') then
    create role gw_authenticator login noinherit password 'gw_authenticator';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'gw_anon') then
    create role gw_anon nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'gw_user') then
    create role gw_user nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'gw_outsider') then
    create role gw_outsider nologin;
  end if;
end $$;
grant gw_anon, gw_user to gw_authenticator;

create schema test;
comment on schema test is 'Gateway test API
Fixture schema used by the HTTP tests.';
grant usage on schema test to gw_anon, gw_user;

create table test.authors (
  id int primary key,
  name text not null,
  country text
);
comment on table test.authors is 'People who write books';
comment on column test.authors.name is 'Full name';

create table test.books (
  id int primary key,
  title text not null,
  author_id int references test.authors(id),
  coauthor_id int,
  year int,
  pages int,
  tags text[] not null default '{}',
  meta jsonb,
  tsv tsvector,
  during int4range,
  price numeric(8,2)
);
alter table test.books add constraint books_coauthor_fk foreign key (coauthor_id) references test.authors(id);

create table test.reviews (
  id serial primary key,
  book_id int not null references test.books(id) on delete cascade,
  stars int not null check (stars between 1 and 5),
  body text
);

create table test.logs (msg text, at int);  -- no primary key

create table test.items (
  id serial primary key,
  name text unique,
  qty int not null default 1,
  note text default 'none'
);

create table test.secrets (
  id int primary key,
  owner text not null,
  value text
);
alter table test.secrets enable row level security;
create policy owner_only on test.secrets
  using (owner = current_setting('request.jwt.claims', true)::json->>'sub');

create table test.private_stuff (id int primary key);  -- no grants at all

create view test.book_titles as select id, title, author_id from test.books;
comment on view test.book_titles is 'Titles only';

insert into test.authors values (1, 'Ursula Le Guin', 'US'), (2, 'Stanislaw Lem', 'PL'),
  (3, 'Italo Calvino', 'IT'), (4, 'Nobody', null);
insert into test.books (id, title, author_id, coauthor_id, year, pages, tags, meta, tsv, during, price) values
  (1, 'The Left Hand of Darkness', 1, null, 1969, 304, '{scifi,classic}', '{"lang":"en","awards":["hugo","nebula"],"n":1}',
   to_tsvector('english', 'The Left Hand of Darkness'), '[1960,1970)', 9.99),
  (2, 'The Dispossessed', 1, 2, 1974, 387, '{scifi,utopia}', '{"lang":"en","n":2}',
   to_tsvector('english', 'The Dispossessed'), '[1970,1980)', 12.50),
  (3, 'Solaris', 2, null, 1961, 204, '{scifi}', '{"lang":"pl","n":3}', to_tsvector('english', 'Solaris ocean'),
   '[1960,1970)', 8.00),
  (4, 'Invisible Cities', 3, null, 1972, 165, '{fable}', null, to_tsvector('english', 'Invisible Cities'),
   '[1970,1980)', null),
  (5, 'The Cyberiad', 2, null, null, 295, '{}', '{"lang":"pl"}', to_tsvector('english', 'The Cyberiad robots'),
   null, 10.00);
insert into test.reviews (book_id, stars, body) values (1, 5, 'great'), (1, 4, 'good'), (3, 5, 'deep'),
  (5, 3, null);
insert into test.logs values ('a', 1), ('b', 2);
insert into test.secrets values (1, 'alice', 'a-secret'), (2, 'bob', 'b-secret');

-- functions
create function test.add(a int, b int) returns int language sql immutable as $$ select a + b $$;
comment on function test.add(int, int) is 'Adds two integers';
create function test.hello(name text default 'world') returns text language sql stable
  as $$ select 'hello ' || name $$;
create function test.noop() returns void language sql volatile as $$ select $$;
create function test.books_by(author int) returns setof test.books language sql stable
  as $$ select * from test.books where author_id = author order by id $$;
create function test.first_book() returns test.books language sql stable
  as $$ select * from test.books order by id limit 1 $$;
create function test.numbers(n int) returns setof int language sql immutable
  as $$ select generate_series(1, n) $$;
create function test.add_log(msg text) returns int language sql volatile
  as $$ insert into test.logs values (msg, 0); select count(*)::int from test.logs $$;
create function test.over(a int) returns text language sql stable as $$ select 'a' $$;
create function test.over(b text) returns text language sql stable as $$ select 'b' $$;
create function test.stats() returns table(total bigint, maxyear int) language sql stable
  as $$ select count(*), max(year) from test.books $$;
create function test.fail() returns int language plpgsql stable
  as $$ begin raise exception 'nope' using hint = 'try again', detail = 'it failed'; end $$;
create function test.teapot() returns int language plpgsql stable as $$
begin
  perform set_config('response.status', '418', true);
  perform set_config('response.headers', '[{"X-Brew":"tea"},{"Cache-Control":"no-cache"}]', true);
  return 1;
end $$;
create function test.header_echo(value text) returns int language plpgsql stable as $$
begin
  perform set_config('response.headers', json_build_array(json_build_object('X-Echo', value))::text, true);
  return 1;
end $$;
create function test.whoami() returns json language sql stable as $$
  select json_build_object('role', current_user, 'claims', current_setting('request.jwt.claims', true)::json,
    'method', current_setting('request.method', true), 'path', current_setting('request.path', true),
    'ua', current_setting('request.headers', true)::json->>'x-test', 'cookie',
    current_setting('request.cookies', true)::json->>'c')
$$;
create function test.pre_check() returns void language plpgsql stable as $$
begin
  if current_setting('request.headers', true)::json->>'x-block' = 'yes' then
    raise sqlstate 'PT403' using message = 'blocked by pre-request';
  end if;
  perform set_config('response.headers', '[{"X-Pre":"1"}]', true);
end $$;

grant select on all tables in schema test to gw_anon, gw_user;
revoke select on test.private_stuff from gw_anon, gw_user;
grant insert, update, delete on test.books, test.reviews, test.logs, test.items, test.authors to gw_user;
grant usage on all sequences in schema test to gw_user;
grant select, insert, update, delete on test.secrets to gw_user;
revoke execute on all functions in schema test from public;
grant execute on all functions in schema test to gw_anon, gw_user;
