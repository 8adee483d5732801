#!/usr/bin/env bash
# Every admin report over 24 months, uncached, on a seeded database
# (100,000 patrons, 1,000 sponsors, 1,000,000 ledger entries, 2,000
# expenses by default): the monthly report, the costs report, the
# analytics (movements, cohorts, concentration, forecast) and the public
# transparency report, each computed 15 times by the service function a
# request calls (examples/reports_bench.rs). Goal: under 200 ms each, on
# both databases. Both databases, or BACKENDS=sqlite.
#
#   bash benches/reports.sh
#
# Knobs: PATRONS SPONSORS ENTRIES EXPENSES BACKENDS PG_ADMIN_URL
# SEEDED_URL: a database seeded before, used as it is and kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PATRONS=${PATRONS:-100000}
SPONSORS=${SPONSORS:-1000}
ENTRIES=${ENTRIES:-1000000}
EXPENSES=${EXPENSES:-2000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cargo build --release --quiet --bin patronage --example reports_bench
TARGET=${CARGO_TARGET_DIR:-target}/release
if [ -n "${SEEDED_URL:-}" ]; then
  echo "## seeded before: $SEEDED_URL"
  exec "$TARGET/examples/reports_bench" "$SEEDED_URL"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for backend in $BACKENDS; do
  case $backend in
    sqlite) url="sqlite://$WORK/patronage.db" ;;
    postgres)
      psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_reports_bench WITH (FORCE)" -qc "CREATE DATABASE patronage_reports_bench"
      url="${PG_ADMIN_URL%/*}/patronage_reports_bench" ;;
  esac
  echo
  echo "## $backend"
  PATRONAGE__DATABASE__URL="$url" PATRONAGE__SERVER__DATA_DIR="$WORK" PATRONAGE__LOG__LEVEL=warn \
    "$TARGET/patronage" seed --patrons "$PATRONS" --sponsors "$SPONSORS" \
    --ledger-entries "$ENTRIES" --expenses "$EXPENSES"
  "$TARGET/examples/reports_bench" "$url"
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_reports_bench WITH (FORCE)"
  fi
done
