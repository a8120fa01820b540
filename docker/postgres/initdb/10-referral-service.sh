#!/usr/bin/env bash
# Runs once, when the entrypoint initialises an empty data directory (POSTGRES_DB=referral_service).
# Applies the migrations in file-name order, each in one transaction, and records them exactly as
# `referral-service migrate` does, so that the migrate service (and later upgrades) see them as applied.
# Then installs the JWT signing key (the authenticator's password is left to `referral-service migrate`).
set -euo pipefail

# The key arrives as a file (compose secret, JWT_SECRET_FILE) or, failing that, in JWT_SECRET.
if [[ -n "${JWT_SECRET_FILE:-}" ]]; then
    JWT_SECRET=$(<"$JWT_SECRET_FILE")
    export JWT_SECRET
fi
: "${JWT_SECRET:?set JWT_SECRET_FILE (or JWT_SECRET)}"

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

# The authenticator's password is NOT set here: psql would send it in clear inside ALTER ROLE, which
# pg_stat_statements keeps verbatim. The compose `migrate` service (`referral-service migrate`) sets it
# from a SCRAM verifier computed by libpq on the client; until then the authenticator cannot log in.
# The signing key goes in a transaction that neither statement statistics nor the server log record.
# \getenv keeps it out of the process list (psql 15+).
"${psql[@]}" --quiet <<'SQL'
\getenv jwt_secret JWT_SECRET
begin;
set local pg_stat_statements.track = 'none';
set local log_statement = 'none';
set local log_min_duration_statement = -1;
set local log_min_error_statement = 'panic';
insert into internal.secrets (name, value) values ('jwt_secret', :'jwt_secret')
    on conflict (name) do update set value = excluded.value;
commit;
SQL
