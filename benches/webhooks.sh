#!/usr/bin/env bash
# Webhook ingestion throughput: signed invoice.paid events per second, each
# stored and booked in one commit, on PostgreSQL and SQLite, next to pgbench
# (TPC-B-like) on the same PostgreSQL server in the same run; then the fee
# tasks those bookings queued, measured on their own. The example checks
# every invoice and every fee is booked exactly once.
#
#   bash benches/webhooks.sh
#   EVENTS=10000 CONCURRENCY=64 bash benches/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-5000}
CONCURRENCY=${CONCURRENCY:-32}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-15}

cargo build --release --quiet --example webhook_bench

echo "== pgbench (TPC-B-like, scale 10, 8 clients, 2 threads, ${PGBENCH_SECONDS}s)"
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_pgbench WITH (FORCE)" -qc "CREATE DATABASE patronage_pgbench"
PGBENCH_URL="${PG_ADMIN_URL%/*}/patronage_pgbench"
pgbench -q -i -s 10 "$PGBENCH_URL" >/dev/null 2>&1
pgbench_out=$(pgbench -c 8 -j 2 -T "$PGBENCH_SECONDS" "$PGBENCH_URL" 2>/dev/null)
tps=$(echo "$pgbench_out" | awk '/^tps/ {print $3; exit}')
p_lat=$(echo "$pgbench_out" | awk '/latency average/ {print $4; exit}')
echo "pgbench: $tps transactions/s, latency average $p_lat ms"
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_pgbench WITH (FORCE)"

for target in "$PG_ADMIN_URL" sqlite; do
  out=$("${CARGO_TARGET_DIR:-target}"/release/examples/webhook_bench "$target" "$EVENTS" "$CONCURRENCY")
  echo "$out"
  rate=$(echo "$out" | grep '^webhooks' | sed -E 's/.*: ([0-9]+) events\/s.*/\1/')
  echo "ratio to pgbench: $(awk -v a="$rate" -v b="$tps" 'BEGIN { printf "%.2f", a / b }')"
done
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_bench_webhooks WITH (FORCE)"
