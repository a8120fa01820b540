#!/bin/sh
# The auth file is written from the environment at start, so the password lives only in .env.
# PgBouncer needs the plain password (not a SCRAM verifier) to log in to PostgreSQL with SCRAM itself.
set -eu
: "${AUTHENTICATOR_PASSWORD:?set it in .env}"
umask 077
# userlist.txt quoting: a double quote inside the value is written twice.
escaped=$(printf '%s' "$AUTHENTICATOR_PASSWORD" | sed 's/"/""/g')
printf '"authenticator" "%s"\n' "$escaped" > /etc/pgbouncer/run/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
