#!/usr/bin/env bash
# Outbound webhook deliveries: 100,000 deliveries to a receiver on loopback
# with 10 endpoints; deliveries per second, the HTTP round trip p50/p99, the
# commit-to-arrival latency p50/p99 at half that rate, and (on PostgreSQL)
# that none is lost or doubled in effect when a second replica is killed
# with SIGKILL a third of the way in. The example exits non-zero if any
# delivery is missing, badly signed or left undone.
#
#   bash benches/webhooks_out.sh
#   DELIVERIES=20000 ENDPOINTS=10 BACKENDS=postgres bash benches/webhooks_out.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DELIVERIES=${DELIVERIES:-100000}
ENDPOINTS=${ENDPOINTS:-10}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BACKENDS=${BACKENDS:-"postgres sqlite"}

cargo build --release --quiet --example webhooks_out_bench
for backend in $BACKENDS; do
  target=$([ "$backend" = postgres ] && echo "$PG_ADMIN_URL" || echo sqlite)
  echo "== $backend: $DELIVERIES deliveries, $ENDPOINTS endpoints"
  "${CARGO_TARGET_DIR:-target}"/release/examples/webhooks_out_bench "$target" "$DELIVERIES" "$ENDPOINTS"
done
