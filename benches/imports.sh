#!/usr/bin/env bash
# Importing an Open Collective transactions.csv of 10,000 and 100,000 rows
# (examples/import_fixture.rs): the dry run, the commit, and a second
# commit of the same file (which books nothing), each timed with
# /usr/bin/time -v for wall time and peak memory (maximum resident set).
# Streaming shows as a peak that stays flat while the file grows tenfold.
#
#   bash benches/imports.sh
#   PROFILE=debug BACKENDS="sqlite postgres" bash benches/imports.sh
#
# Knobs: SIZES PROFILE (release or debug) BACKENDS PG_ADMIN_URL
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"10000 100000"}
PROFILE=${PROFILE:-release}
BACKENDS=${BACKENDS:-sqlite}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin patronage --example import_fixture
else
  cargo build --quiet --bin patronage --example import_fixture
fi
TARGET=${CARGO_TARGET_DIR:-target}/$PROFILE
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

measure() { # label, then the command
  local label=$1; shift
  /usr/bin/time -v "$@" > "$WORK/out.txt" 2> "$WORK/time.txt" || { cat "$WORK/out.txt" "$WORK/time.txt"; exit 1; }
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$WORK/time.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$WORK/time.txt" | awk '{print $NF}')
  printf '| %s | %s | %s | %.1f MiB | %s |\n' "$backend" "$label" "$wall" "$(echo "$rss / 1024" | bc -l)" \
    "$(grep -E '^(dry run:|imported|refused:)' "$WORK/out.txt" | sed -E 's/ of [^ ]+ \(opencollective\)//' | cut -d';' -f1)"
}

echo "| backend | run | wall | peak RSS | summary |"
echo "|---|---|---|---|---|"
for backend in $BACKENDS; do
  for n in $SIZES; do
    "$TARGET/examples/import_fixture" "$n" > "$WORK/transactions-$n.csv"
    case $backend in
      sqlite) rm -f "$WORK"/import.db*; url="sqlite://$WORK/import.db" ;;
      postgres)
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS patronage_import_bench WITH (FORCE)" -qc "CREATE DATABASE patronage_import_bench"
        url="${PG_ADMIN_URL%/*}/patronage_import_bench" ;;
    esac
    export PATRONAGE__DATABASE__URL="$url" PATRONAGE__SERVER__DATA_DIR="$WORK" PATRONAGE__LOG__LEVEL=warn
    "$TARGET/patronage" migrate 2> /dev/null
    file="$WORK/transactions-$n.csv"
    measure "$n rows, dry run" "$TARGET/patronage" import --format opencollective --quiet "$file"
    measure "$n rows, commit" "$TARGET/patronage" import --format opencollective --quiet --commit "$file"
    measure "$n rows, again" "$TARGET/patronage" import --format opencollective --quiet --commit "$file"
  done
done
