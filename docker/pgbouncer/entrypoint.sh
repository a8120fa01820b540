#!/bin/sh
# The auth file is written at start from AUTHENTICATOR_PASSWORD_FILE (a compose/Kubernetes secret; compose
# uses it) or AUTHENTICATOR_PASSWORD, so the password lives only in the secret.
# PgBouncer needs the plain password (not a SCRAM verifier) to log in to PostgreSQL with SCRAM itself.
set -eu
if [ -n "${AUTHENTICATOR_PASSWORD_FILE:-}" ]; then
    AUTHENTICATOR_PASSWORD=$(cat "$AUTHENTICATOR_PASSWORD_FILE")
fi
: "${AUTHENTICATOR_PASSWORD:?set AUTHENTICATOR_PASSWORD_FILE (or AUTHENTICATOR_PASSWORD)}"
umask 077
# userlist.txt quoting: a double quote inside the value is written twice.
escaped=$(printf '%s' "$AUTHENTICATOR_PASSWORD" | sed 's/"/""/g')
printf '"authenticator" "%s"\n' "$escaped" > /etc/pgbouncer/run/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
