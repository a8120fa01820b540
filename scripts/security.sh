#!/usr/bin/env bash
# sqlmap against the gateway's main endpoints, as anonymous, a user and an admin; fails if it finds anything.
# Usage: scripts/security.sh            (starts its own gateway on a free port, on the local database)
#        GATEWAY_URL=http://host:3000 scripts/security.sh   (an already running gateway; needs ADMIN_TOKEN too)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv/bin
SQLMAP=$(command -v sqlmap || true)
[ -n "$SQLMAP" ] || { echo "sqlmap not found: sudo apt-get install -y sqlmap" >&2; exit 2; }
OUT=$(mktemp -d /tmp/referral-sqlmap-XXXXXX)
GW_PID=""
cleanup() {
  local rc=$?
  if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  exit "$rc"
}
trap cleanup EXIT

if [ -z "${GATEWAY_URL:-}" ]; then
  PORT=$($VENV/python -c 'from referral_service.localdb import free_port; print(free_port())')
  # limits off for this gateway only: sqlmap sends thousands of requests, many to /rpc/login
  ADMIN_PORT=$($VENV/python -c 'from referral_service.localdb import free_port; print(free_port())')
  REFERRAL_RATE_LIMIT=0 REFERRAL_AUTH_RATE_LIMIT=0 REFERRAL_CLIENT_MAX_IN_FLIGHT=0 PGRST_ADMIN_SERVER_PORT=$ADMIN_PORT \
    $VENV/referral-service serve --port "$PORT" >"$OUT/gateway.log" 2>&1 &
  GW_PID=$!
  GATEWAY_URL="http://127.0.0.1:$PORT"
  READY="http://127.0.0.1:$ADMIN_PORT/ready"  # the admin server's
  for _ in $(seq 100); do curl -fs "$READY" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "$READY" >/dev/null || { echo "gateway did not start:"; tail -20 "$OUT/gateway.log"; exit 1; }
  ADMIN_TOKEN=$($VENV/python - "$GATEWAY_URL" <<'PY'
import sys, httpx
from referral_service import config, provision
password = config.load_secrets().demo_admin_password
r = httpx.post(sys.argv[1] + "/rpc/login", json={"email": provision.DEMO_ADMIN_EMAIL, "password": password})
r.raise_for_status(); print(r.json()["access_token"])
PY
)
fi
# a user of our own (signup is open): the user-level endpoints need one
EMAIL="sqlmap-$(date +%s)@example.com"; PASS="sqlmap pass $RANDOM$RANDOM"
curl -fs -X POST "$GATEWAY_URL/rpc/signup" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASS\"}" >/dev/null
USER_TOKEN=$(curl -fs -X POST "$GATEWAY_URL/rpc/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASS\"}" | $VENV/python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
OFFER=$(curl -fs "$GATEWAY_URL/offers?select=id&limit=1" | $VENV/python -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["id"] if r else "00000000-0000-0000-0000-000000000000")')

found=0; runs=0
scan() {  # scan NAME TOKEN URL [JSON-BODY]
  local name=$1 token=$2 url=$3 body=${4:-}
  local args=(-u "$GATEWAY_URL$url" --batch --level=2 --risk=1 --dbms=PostgreSQL --threads=4 --timeout=15
              --disable-coloring --flush-session --output-dir="$OUT/$name" --ignore-code=400,401,403,404,406,409)
  [ -n "$token" ] && args+=(--headers="Authorization: Bearer $token")
  [ -n "$body" ] && args+=(--data="$body" --headers="${token:+Authorization: Bearer $token
}Content-Type: application/json")
  runs=$((runs + 1))
  echo "== $name: ${body:+POST }$url"
  if ! "$SQLMAP" "${args[@]}" >"$OUT/$name.log" 2>&1; then echo "   sqlmap failed: see $OUT/$name.log"; found=1; fi
  if grep -qiE "is vulnerable|identified the following injection point|appears to be .*injectable" "$OUT/$name.log" \
     && ! grep -qi "do not appear to be injectable" "$OUT/$name.log"; then
    echo "   INJECTION FOUND: see $OUT/$name.log"; found=1
  else
    echo "   nothing found ($(grep -c 'testing ' "$OUT/$name.log") techniques tried)"
  fi
}

scan offers-anon "" "/offers?status=eq.active&institution=eq.Chase&select=id,title&order=created_at.desc&limit=5"
scan search-anon "" "/rpc/search_offers" '{"search_term":"bonus"}'
scan login-anon "" "/rpc/login" '{"email":"nobody@example.com","password":"not the password"}'
scan event-user "$USER_TOKEN" "/rpc/log_event" "{\"event_type\":\"offer_click\",\"event_data\":{\"offer_id\":\"$OFFER\"}}"
scan offers-admin "${ADMIN_TOKEN:-}" "/offers?id=eq.$OFFER&select=id,title,status"
scan users-admin "${ADMIN_TOKEN:-}" "/users?email=like.*example.com&select=id,email,role"

echo "sqlmap: $runs endpoint scans, $( [ $found = 0 ] && echo 'nothing found' || echo 'FINDINGS' ); logs in $OUT"
exit $found
