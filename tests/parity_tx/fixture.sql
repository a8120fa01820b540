-- Fixture for the parity tests of transaction control, EXPLAIN, media types and RPC parameter forms.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'ptx_authenticator') then
    create role ptx_authenticator login noinherit password 'ptx_authenticator';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'ptx_anon') then
    create role ptx_anon nologin;
  end if;
end $$;
grant ptx_anon to ptx_authenticator;

create schema ptx;
grant usage on schema ptx to ptx_anon;
alter default privileges in schema ptx grant execute on functions to ptx_anon;

create table ptx.items (
  id serial primary key,
  name text unique,
  qty int not null default 1,
  note text default 'none'
);
grant select, insert, update, delete on ptx.items to ptx_anon;
grant usage on sequence ptx.items_id_seq to ptx_anon;
insert into ptx.items (name, qty) values ('apple', 3), ('pear', 5);
select setval('ptx.items_id_seq', 100);

create table ptx.deferred (
  id int,
  constraint deferred_id_key unique (id) deferrable initially deferred
);
grant select, insert on ptx.deferred to ptx_anon;

create function ptx.raise_constraint(deferred bool default false) returns void language plpgsql volatile as $$
begin
  if deferred then
    insert into ptx.deferred values (1), (1);
  else
    insert into ptx.items (id, name) values (1, 'dup');
  end if;
end $$;

create function ptx.add_item(name text) returns setof ptx.items language sql volatile as $$
  insert into ptx.items (name) values (name) returning *
$$;
create function ptx.count_items() returns bigint language sql stable as $$ select count(*) from ptx.items $$;

-- a single unnamed parameter takes the whole body (POST only), chosen by Content-Type
create function ptx.unnamed_json(json) returns json language sql immutable as $$ select $1 $$;
create function ptx.unnamed_jsonb(jsonb) returns jsonb language sql immutable as $$ select $1 || '{"seen": true}' $$;
create function ptx.unnamed_text(text) returns text language sql immutable as $$ select 'got: ' || $1 $$;
create function ptx.unnamed_bytea(bytea) returns int language sql immutable as $$ select length($1) $$;
create function ptx.unnamed_int(int) returns int language sql immutable as $$ select $1 $$;  -- invisible
create function ptx.both_json(json) returns text language sql immutable as $$ select 'json' $$;
create function ptx.both_json(jsonb) returns text language sql immutable as $$ select 'jsonb' $$;

-- VARIADIC
create function ptx.join_words(variadic v text[]) returns text language sql immutable as $$
  select array_to_string(v, ' ') $$;
create function ptx.greet_all(greeting text, variadic names text[]) returns text language sql immutable as $$
  select greeting || ', ' || array_to_string(names, ' and ') $$;
create function ptx.sayhello(name text) returns text language sql immutable as $$ select 'Hello, ' || name $$;

-- sets of scalars
create function ptx.ret_setof_integers() returns setof int language sql immutable as $$
  select * from (values (1), (2), (3)) v $$;

-- media types are domains named like them; functions returning one are its handler
create domain "text/plain" as text;
create domain "application/octet-stream" as bytea;
create domain "image/png" as bytea;
create domain "text/html" as text;
create domain "application/vnd.ptx.names" as text;
create domain "*/*" as bytea;
create function ptx.plain_text() returns "text/plain" language sql immutable as $$ select 'plain words' $$;
create function ptx.echo_text(text) returns "text/plain" language sql immutable as $$ select $1 $$;
create function ptx.raw_bytes() returns "application/octet-stream" language sql immutable as $$
  select '\x00ff10'::bytea $$;
create function ptx.ret_image() returns "image/png" language sql immutable as $$ select '\x89504e47'::bytea $$;
create function ptx.ret_text() returns text language sql immutable as $$ select 'just text' $$;
create function ptx.null_text() returns "text/plain" language sql immutable as $$ select null $$;

-- an aggregate handler for one relation (used with the default select only) ...
create function ptx.items_html_step(state text, next ptx.items) returns text language sql immutable as $$
  select coalesce(state, '') || '<li>' || next.name || '</li>' $$;
create function ptx.items_html_final(state text) returns "text/html" language sql immutable as $$
  select '<ul>' || coalesce(state, '') || '</ul>' $$;
create aggregate ptx.items_html(ptx.items) (sfunc = ptx.items_html_step, stype = text,
  finalfunc = ptx.items_html_final);
-- ... and one for any relation (any select)
create function ptx.names_step(state text, next anyelement) returns text language sql immutable as $$
  select concat_ws(',', state, to_jsonb(next)->>'name') $$;
create function ptx.names_final(state text) returns "application/vnd.ptx.names" language sql immutable as $$
  select coalesce(state, '') $$;
create aggregate ptx.names(anyelement) (sfunc = ptx.names_step, stype = text, finalfunc = ptx.names_final);

-- a */* handler for one table answers every Accept (with the default select)
create table ptx.blobs (id int primary key, data bytea);
grant select on ptx.blobs to ptx_anon;
insert into ptx.blobs values (1, '\x0102'), (2, '\x03');
create function ptx.blobs_step(state bytea, next ptx.blobs) returns bytea language sql immutable as $$
  select coalesce(state, '') || next.data $$;
create function ptx.blobs_final(state bytea) returns "*/*" language sql immutable as $$
  select coalesce(state, '') $$;
create aggregate ptx.blobs_agg(ptx.blobs) (sfunc = ptx.blobs_step, stype = bytea, finalfunc = ptx.blobs_final);

-- identity columns take their defaults from their sequences under `missing=default`
create table ptx.ident (
  id int generated by default as identity primary key,
  code int generated by default as identity,
  label text default 'x',
  tags text[] default '{a,b}'
);
grant select, insert, update on ptx.ident to ptx_anon;
grant usage on all sequences in schema ptx to ptx_anon;
