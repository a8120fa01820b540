#!/bin/sh
# The app image's entrypoint: secrets arrive as files (compose or Kubernetes secrets under /run/secrets).
# The app reads PGRST_*_FILE, JWT_SECRET_FILE and AUTHENTICATOR_PASSWORD_FILE itself; libpq (psycopg,
# pg_dump) has no PGPASSWORD_FILE, so it is read here into PGPASSWORD, for this process tree only: the
# password never appears in the compose file, `docker compose config` or `docker inspect`.
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
    if [ -n "${PGPASSWORD:-}" ]; then
        echo "referral-service: set PGPASSWORD or PGPASSWORD_FILE, not both" >&2
        exit 2
    fi
    if ! PGPASSWORD=$(cat "$PGPASSWORD_FILE" 2>/dev/null) || [ -z "$PGPASSWORD" ]; then
        echo "referral-service: PGPASSWORD_FILE=$PGPASSWORD_FILE cannot be read or is empty" >&2
        exit 2
    fi
    export PGPASSWORD
    unset PGPASSWORD_FILE
fi
exec "$@"
