#!/usr/bin/env bash
# Load GET /api/v1/funding on a seeded database, next to nginx serving the
# same JSON as a static file, in the same run. Prints requests/s, latency
# and the ratio for SQLite and PostgreSQL.
#
#   bash benches/funding.sh            # both backends
#   BACKENDS=sqlite bash benches/funding.sh
#
# Knobs: PATRONS SPONSORS ENTRIES DURATION CONNECTIONS THREADS PG_ADMIN_URL
set -euo pipefail
cd "$(dirname "$0")/.."

PATRONS=${PATRONS:-100000}
SPONSORS=${SPONSORS:-1000}
ENTRIES=${ENTRIES:-1000000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
APP_PORT=18080
NGINX_PORT=18081

for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool" >&2
    apt-get install -y -qq wrk nginx-light >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
  fi
done

cargo build --release --quiet
BIN=target/release/patronage
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat > "$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    location / { default_type application/json; }
  }
}
NGINX
mkdir -p "$WORK/www"
# nginx workers run unprivileged and must be able to read the file.
chmod 755 "$WORK" "$WORK/www"

# wrk's summary: requests/s, p50 and p99 latency.
load() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" > "$WORK/wrk.out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
  echo "$rps $p50 $p99 ${errors:-none}"
}

printf '\nseed: %s patrons, %s sponsors, %s ledger entries; wrk -t%s -c%s -d%s\n' \
  "$PATRONS" "$SPONSORS" "$ENTRIES" "$THREADS" "$CONNECTIONS" "$DURATION"

for backend in $BACKENDS; do
  case $backend in
    sqlite) export PATRONAGE__DATABASE__URL="sqlite://$WORK/data-sqlite/patronage.db" ;;
    postgres)
      psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_bench WITH (FORCE)" -qc "CREATE DATABASE patronage_bench"
      export PATRONAGE__DATABASE__URL="${PG_ADMIN_URL%/*}/patronage_bench" ;;
  esac
  export PATRONAGE__SERVER__DATA_DIR="$WORK/data-$backend"
  export PATRONAGE__SERVER__BIND="127.0.0.1:$APP_PORT"
  export PATRONAGE__LOG__LEVEL=warn
  export PATRONAGE__AUTH__JWT_SECRET=benchmark-secret-benchmark-secret-0000

  seed_line=$("$BIN" seed --patrons "$PATRONS" --sponsors "$SPONSORS" --ledger-entries "$ENTRIES")
  "$BIN" serve 2>"$WORK/serve-$backend.log" &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$APP_PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$APP_PORT/api/v1/funding" > "$WORK/www/funding.json"
  nginx -c "$WORK/nginx.conf"
  sleep 0.5

  read -r app_rps app_p50 app_p99 app_err < <(load "http://127.0.0.1:$APP_PORT/api/v1/funding")
  read -r ngx_rps ngx_p50 ngx_p99 ngx_err < <(load "http://127.0.0.1:$NGINX_PORT/funding.json")
  kill "$(cat "$WORK/nginx.pid")"; sleep 0.3
  kill -TERM "$server"; wait "$server" || true

  ratio=$(awk -v a="$app_rps" -v n="$ngx_rps" 'BEGIN { printf "%.2f", a / n }')
  echo
  echo "## $backend"
  echo "$seed_line"
  echo "body: $(wc -c < "$WORK/www/funding.json") bytes"
  printf '| target | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|\n'
  printf '| patronage /api/v1/funding | %s | %s | %s | %s |\n' "$app_rps" "$app_p50" "$app_p99" "$app_err"
  printf '| nginx static file | %s | %s | %s | %s |\n' "$ngx_rps" "$ngx_p50" "$ngx_p99" "$ngx_err"
  echo "ratio patronage / nginx: $ratio"
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_bench WITH (FORCE)"
  fi
done
