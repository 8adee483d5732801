#!/usr/bin/env bash
# The admin console under load, signed in, on a seeded database (100,000
# patrons, 1,000 sponsors, 1,000,000 ledger entries by default): p99 of the
# overview, the supporters' first page, a deep keyset page, a search and a
# 24-month report (goal: under 50 ms each), then the CSV export of every
# supporter: its time and the server's peak RSS before and after (goal:
# under 3 s, flat memory). Both databases, or BACKENDS=sqlite.
#
#   bash benches/admin.sh
#
# Knobs: PATRONS SPONSORS ENTRIES DURATION CONNECTIONS THREADS PG_ADMIN_URL
# SEEDED_URL: a database seeded before (`patronage seed`), used as it is and
# kept, so a re-run skips the seeding (18 minutes on PostgreSQL here).
set -euo pipefail
cd "$(dirname "$0")/.."

PATRONS=${PATRONS:-100000}
SPONSORS=${SPONSORS:-1000}
ENTRIES=${ENTRIES:-1000000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SEEDED_URL=${SEEDED_URL:-}
case $SEEDED_URL in
  "") ;;
  sqlite:*) BACKENDS=sqlite ;;
  *) BACKENDS=postgres ;;
esac
PORT=18090
PASSWORD='benchmark password, long enough'

command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/patronage
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# wrk's requests/s, p50 and p99, and any errors.
load() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: patronage=$SESSION" "$1" > "$WORK/wrk.out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
  echo "$rps $p50 $p99 ${errors:-none}"
}

peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

printf '\nseed: %s patrons, %s sponsors, %s ledger entries; wrk -t%s -c%s -d%s, signed in\n' \
  "$PATRONS" "$SPONSORS" "$ENTRIES" "$THREADS" "$CONNECTIONS" "$DURATION"

for backend in $BACKENDS; do
  case ${SEEDED_URL:+seeded}$backend in
    seeded*) export PATRONAGE__DATABASE__URL="$SEEDED_URL" ;;
    sqlite) export PATRONAGE__DATABASE__URL="sqlite://$WORK/data-sqlite/patronage.db" ;;
    postgres)
      psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_admin_bench WITH (FORCE)" -qc "CREATE DATABASE patronage_admin_bench"
      export PATRONAGE__DATABASE__URL="${PG_ADMIN_URL%/*}/patronage_admin_bench" ;;
  esac
  export PATRONAGE__SERVER__DATA_DIR="$WORK/data-$backend"
  export PATRONAGE__SERVER__BIND="127.0.0.1:$PORT"
  export PATRONAGE__LOG__LEVEL=warn
  export PATRONAGE__AUTH__JWT_SECRET=benchmark-secret-benchmark-secret-0000
  # Many requests from one address: the login limits are not what is measured.
  export PATRONAGE__AUTH__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000

  if [ -n "$SEEDED_URL" ]; then
    seed_line="seeded before"
    # The bench admin may exist from an earlier run on this database.
    echo "$PASSWORD" | "$BIN" admin create --email bench@example.org --role owner >/dev/null 2>&1 || true
  else
    seed_line=$("$BIN" seed --patrons "$PATRONS" --sponsors "$SPONSORS" --ledger-entries "$ENTRIES")
    echo "$PASSWORD" | "$BIN" admin create --email bench@example.org --role owner >/dev/null
  fi
  "$BIN" serve 2>"$WORK/serve-$backend.log" &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

  # Sign in through the sign-in page, as a browser would.
  base="http://127.0.0.1:$PORT"
  curl -s -c "$WORK/jar" "$base/admin/login" -o "$WORK/login.html"
  csrf=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$WORK/login.html" | head -1 | grep -o '[0-9a-f]\{64\}')
  curl -s -b "$WORK/jar" -c "$WORK/jar" -o /dev/null "$base/admin/login" \
    --data-urlencode "csrf=$csrf" --data-urlencode "email=bench@example.org" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "next=/admin"
  SESSION=$(awk '$6 == "patronage" {print $7}' "$WORK/jar")
  [ -n "$SESSION" ] || { echo "sign-in failed" >&2; exit 1; }

  to=$(date -u +%Y-%m)
  from=$(date -u -d "$(date -u +%Y-%m-15) -23 months" +%Y-%m)
  deep=$((PATRONS / 2))
  echo
  echo "## $backend"
  echo "$seed_line"
  printf '| page | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|\n'
  for page in \
    "overview|/admin" \
    "supporters, page 1|/admin/supporters" \
    "supporters, a deep keyset page|/admin/supporters?sort=joined&dir=asc&after=$deep%7C$deep" \
    "supporters, a search|/admin/supporters?q=patron4242" \
    "report, 24 months|/admin/reports?from=$from&to=$to"; do
    name=${page%%|*}; path=${page#*|}
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: patronage=$SESSION" "$base$path")
    [ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }
    read -r rps p50 p99 err < <(load "$base$path")
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$err"
  done

  before=$(peak_rss_kib "$server")
  export_line=$(curl -s -o "$WORK/supporters.csv" -w '%{time_total} %{size_download}' \
    -H "Cookie: patronage=$SESSION" "$base/admin/supporters.csv")
  after=$(peak_rss_kib "$server")
  rows=$(($(wc -l < "$WORK/supporters.csv") - 1))
  read -r secs bytes <<< "$export_line"
  echo "CSV export: $rows supporters, $bytes bytes in ${secs} s; server peak RSS ${before} KiB before, ${after} KiB after"

  kill -TERM "$server"; wait "$server" || true
  if [ "$backend" = postgres ] && [ -z "$SEEDED_URL" ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_admin_bench WITH (FORCE)"
  fi
done
