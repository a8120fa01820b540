#!/usr/bin/env bash
# Installs what the two README commands need, only what is missing: Debian packages and the .venv.
# Safe to run again. As root (CI) it installs the packages; otherwise it prints the command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the server, pg_cron, the pooler; promtool (prometheus) checks the alert rules;
# chromium runs the dashboard's browser test (Playwright drives it; it never downloads a browser);
# sqlmap for `make security`; pgbackrest for point-in-time recovery (`referral-service pitr enable`).
PACKAGES=(postgresql-15 postgresql-contrib postgresql-15-cron pgbouncer pgbackrest prometheus chromium sqlmap
          postgresql-15-postgis-3)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing Debian packages; install them with:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "installing ${missing[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d 101: do not start the packaged services; the project runs its own processes
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# Python environment, rebuilt when pyproject.toml changes.
stamp=.venv/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "preparing .venv ..."
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2> >(grep -v '^WARNING: Location' >&2)
    echo "$want" >"$stamp"
fi
