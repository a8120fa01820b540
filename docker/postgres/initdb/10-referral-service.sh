#!/usr/bin/env bash
# Runs once, when the entrypoint initialises an empty data directory (POSTGRES_DB=referral_service).
# Applies the migrations in file-name order, each in one transaction, and records them exactly as
# `referral-service migrate` does, so that the migrate service (and later upgrades) see them as applied.
# Then installs the secrets the way `referral-service migrate` provisions them.
set -euo pipefail

: "${AUTHENTICATOR_PASSWORD:?set it in .env}"
: "${JWT_SECRET:?set it in .env}"

psql=(psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB")

# Same bookkeeping table as src/referral_service/migrate.py (BOOKKEEPING); tests/ops checks they agree.
"${psql[@]}" --quiet <<'SQL'
create schema if not exists schema_migrations;
comment on schema schema_migrations is 'Bookkeeping of the migration runner (not exposed).';
create table if not exists schema_migrations.applied (
    version    text primary key,
    file_name  text not null,
    checksum   text not null,
    applied_at timestamptz not null default now()
);
SQL

shopt -s nullglob
# The glob expands sorted, and names are NNN_name.sql: that is the runner's order.
for file in /opt/referral-service/migrations/[0-9][0-9][0-9]_*.sql; do
    name=$(basename "$file")
    echo "referral-service: applying $name"
    "${psql[@]}" --quiet \
        -v file="$file" -v version="${name%%_*}" -v name="$name" \
        -v checksum="$(sha256sum "$file" | cut -d' ' -f1)" <<'SQL'
begin;
\i :file
insert into schema_migrations.applied (version, file_name, checksum) values (:'version', :'name', :'checksum');
commit;
SQL
done

# \getenv keeps the secrets out of the process list (psql 15+).
"${psql[@]}" --quiet <<'SQL'
\getenv authenticator_password AUTHENTICATOR_PASSWORD
\getenv jwt_secret JWT_SECRET
alter role authenticator password :'authenticator_password';
insert into internal.secrets (name, value) values ('jwt_secret', :'jwt_secret')
    on conflict (name) do update set value = excluded.value;
SQL
