#!/usr/bin/env bash
# Installs what a README command needs, only what is missing: Debian packages and the .venv.
#   bootstrap.sh run    what serving needs (make run): the server, pg_cron, the pooler, pgbackrest for
#                       point-in-time recovery (`referral-service pitr enable`); the runtime dependencies only
#   bootstrap.sh test   and the test tools (make test, make security, make lint): the [test] extra, promtool
#                       (prometheus) for the alert rules, chromium for the dashboard's browser test (Playwright
#                       drives it; it never downloads a browser), sqlmap for `make security`, PostGIS for the
#                       GeoJSON tests (tests/parity_tx skips them when it is absent)
# Safe to run again. As root (CI) it installs the packages; otherwise it prints the command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-test}
RUNTIME=(postgresql-15 postgresql-contrib postgresql-15-cron postgresql-15-rum pgbouncer pgbackrest)
case "$profile" in
    run) PACKAGES=("${RUNTIME[@]}"); extras="" ;;
    test) PACKAGES=("${RUNTIME[@]}" prometheus chromium sqlmap postgresql-15-postgis-3 redis-server); extras="[test]" ;;
    *) echo "usage: bootstrap.sh run|test" >&2; exit 2 ;;
esac

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

# Python environment, rebuilt when pyproject.toml changes. A .venv with the test extra serves `run` too.
stamp=.venv/.pyproject.sha256
sum=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [[ ! -x .venv/bin/python || ( "$have" != "$sum test" && "$have" != "$sum $profile" ) ]]; then
    echo "preparing .venv ($profile) ..."
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -e ".$extras" 2> >(grep -v '^WARNING: Location' >&2)
    echo "$sum $profile" >"$stamp"
fi
