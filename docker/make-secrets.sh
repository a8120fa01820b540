#!/bin/sh
# Creates the secrets the compose file mounts (docker/docker-compose.yml, top-level `secrets:`), once:
#   sh docker/make-secrets.sh            # -> ./secrets/{postgres_password,authenticator_password,jwt_secret}
#   sh docker/make-secrets.sh /some/dir  # elsewhere (then point the compose file's `secrets:` there)
# An existing file is never replaced: the database keeps the values it was initialised with (rotate with
# `referral-service secrets rotate`, docs/operations.md). The folder is 0700, which is what protects the
# values on the host; the files are 0444 because compose bind-mounts them with the host's owner and mode,
# and each container reads them as its own user (postgres, pgbouncer, the app's uid 10001).
set -eu
dir=${1:-secrets}
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
for name in postgres_password authenticator_password jwt_secret; do
    file="$dir/$name"
    if [ -s "$file" ]; then
        echo "kept    $file"
        continue
    fi
    # 32 random bytes as 64 hex characters: URL-safe, and longer than the 32 characters the JWT secret needs.
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$file"
    chmod 0444 "$file"
    echo "created $file"
done
