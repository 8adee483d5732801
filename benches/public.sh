#!/usr/bin/env bash
# Load the about-page views on a seeded database, each next to nginx serving
# a static file of the same bytes, in the same run:
#   /api/v1/funding, /badge/patrons.svg, /sponsors.svg, /embed/progress, /healthz
# Each endpoint alternates patronage and nginx ROUNDS times (short runs, so
# both sides see the same machine); prints requests/s, p50, p99 per run and,
# per endpoint, the mean requests/s, the worst p99 and the ratio to nginx.
#
#   bash benches/public.sh                      # SQLite
#   BACKENDS="sqlite postgres" bash benches/public.sh
#   BIN=/path/to/patronage bash benches/public.sh   # that binary, no build
#
# Knobs: PATRONS SPONSORS ENTRIES LOGOS DURATION ROUNDS CONNECTIONS THREADS
# ENDPOINTS BIN PG_ADMIN_URL
set -euo pipefail
cd "$(dirname "$0")/.."

PATRONS=${PATRONS:-100000}
SPONSORS=${SPONSORS:-1000}
ENTRIES=${ENTRIES:-1000000}
LOGOS=${LOGOS:-20}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-"sqlite"}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
APP_PORT=18080
NGINX_PORT=18081
ENDPOINTS=${ENDPOINTS:-"/api/v1/funding /badge/patrons.svg /sponsors.svg /embed/progress /healthz"}

for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool" >&2
    apt-get install -y -qq wrk nginx-light >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
  fi
done

if [ -z "${BIN:-}" ]; then
  nice -n 10 cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/patronage
fi
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat > "$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { application/json json; image/svg+xml svg; text/html html; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
NGINX
mkdir -p "$WORK/www"
chmod 755 "$WORK" "$WORK/www"

# wrk's latency ("812.00us", "2.28ms", "1.02s") in milliseconds.
ms() {
  awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /[0-9]s$/) v *= 1000; printf "%.2f", v }'
}

load() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" > "$WORK/wrk.out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' "$WORK/wrk.out")
  p50=$(ms "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")")
  p99=$(ms "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ' | tr ' ' '_')
  echo "$rps $p50 $p99 ${errors:-none}"
}

# A small solid PNG, for sponsor logos.
python3 - "$WORK/logo.png" <<'PY'
import struct, sys, zlib
w, h = 240, 80
raw = b"".join(b"\x00" + bytes([86, 58, 204, 255]) * w for _ in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

printf '\nseed: %s patrons, %s sponsors (%s with logos), %s ledger entries; wrk -t%s -c%s -d%s, %s rounds\n' \
  "$PATRONS" "$SPONSORS" "$LOGOS" "$ENTRIES" "$THREADS" "$CONNECTIONS" "$DURATION" "$ROUNDS"

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
  # An owner, to upload logos for the first sponsors.
  echo 'benchmark owner password' | "$BIN" admin create --email bench@example.org --role owner >/dev/null
  "$BIN" serve 2>"$WORK/serve-$backend.log" &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$APP_PORT/readyz" >/dev/null && break; sleep 0.1; done
  token=$(curl -sf -X POST "http://127.0.0.1:$APP_PORT/api/v1/admin/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.org","password":"benchmark owner password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  ids=$(curl -sf "http://127.0.0.1:$APP_PORT/api/v1/admin/sponsors?status=approved&limit=$LOGOS" -H "authorization: Bearer $token" \
    | grep -o '"id":[0-9]*' | cut -d: -f2 | head -n "$LOGOS")
  for id in $ids; do
    curl -sf -X POST "http://127.0.0.1:$APP_PORT/api/v1/admin/sponsors/$id/logo?alt_text=Logo%20$id" \
      -H "authorization: Bearer $token" --data-binary "@$WORK/logo.png" >/dev/null
  done
  sleep 0.5
  printf '\n## %s\n%s\n' "$backend" "$seed_line"
  printf '| endpoint | body bytes | run | patronage req/s | p50 ms | p99 ms | nginx req/s | nginx p50 ms | nginx p99 ms | ratio | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n'
  summary=""
  for path in $ENDPOINTS; do
    file="$WORK/www/static$(echo "$path" | tr '/' '_')"
    case $path in
      *.svg) file="$file.svg" ;; /embed/*) file="$file.html" ;; *) file="$file.json" ;;
    esac
    curl -sf "http://127.0.0.1:$APP_PORT$path" > "$file"
    bytes=$(wc -c < "$file")
    [ -f "$WORK/nginx.pid" ] || { nginx -c "$WORK/nginx.conf"; sleep 0.5; }
    runs=""
    for run in $(seq 1 "$ROUNDS"); do
      read -r app_rps app_p50 app_p99 app_err < <(load "http://127.0.0.1:$APP_PORT$path")
      read -r ngx_rps ngx_p50 ngx_p99 ngx_err < <(load "http://127.0.0.1:$NGINX_PORT/$(basename "$file")")
      ratio=$(awk -v a="$app_rps" -v n="$ngx_rps" 'BEGIN { printf "%.2f", a / n }')
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$path" "$bytes" "$run" \
        "$app_rps" "$app_p50" "$app_p99" "$ngx_rps" "$ngx_p50" "$ngx_p99" "$ratio" "$app_err / $ngx_err"
      runs="$runs$app_rps $app_p99 $ngx_rps $ngx_p99
"
    done
    summary="$summary$(printf '%s' "$runs" | awk -v path="$path" '
      { a += $1; n += $3; if ($2 > ap) ap = $2; if ($4 > np) np = $4; k++ }
      END { printf "| %s | %d | %.2f | %d | %.2f | %.2f |", path, a / k, ap, n / k, np, a / n }')
"
  done
  printf '\nmean of %s runs, worst p99:\n\n| endpoint | patronage req/s | p99 ms | nginx req/s | nginx p99 ms | ratio |\n|---|---|---|---|---|---|\n%s' \
    "$ROUNDS" "$summary"
  kill "$(cat "$WORK/nginx.pid")"; rm -f "$WORK/nginx.pid"; sleep 0.3
  kill -TERM "$server"; wait "$server" || true
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_bench WITH (FORCE)"
  fi
done
