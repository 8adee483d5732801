#!/usr/bin/env bash
# How soon a change made on one replica is visible on another: two
# `patronage serve` on one fresh PostgreSQL database; a tier is created
# through replica A's admin API, then replica B's public `/api/v1/tiers` is
# polled (every millisecond) until it lists it. Repeated ROUNDS times, a
# pause between rounds (so each change is measured alone, not as part of a
# burst). Prints p50, p99 and max, from the moment A answered (the change
# committed before) and from the moment the request was sent.
#
#   bash benches/replicas.sh
#   BIN=/path/to/patronage bash benches/replicas.sh   # that binary, no build
#
# Knobs: ROUNDS PAUSE_MS POLL_SECS PG_ADMIN_URL BIN
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-100}
PAUSE_MS=${PAUSE_MS:-200}
POLL_SECS=${POLL_SECS:-2}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=patronage_bench_replicas
PORT_A=18090
PORT_B=18091

if [ -z "${BIN:-}" ]; then
  nice -n 10 cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/patronage
fi
WORK=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$PG_ADMIN_URL" -qc "SET client_min_messages = warning" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$PG_ADMIN_URL" -qc "SET client_min_messages = warning" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "CREATE DATABASE $DB"
export PATRONAGE__DATABASE__URL="${PG_ADMIN_URL%/*}/$DB"
export PATRONAGE__AUTH__JWT_SECRET=benchmark-secret-benchmark-secret-0000
export PATRONAGE__LOG__LEVEL=warn
export PATRONAGE__PUBLIC__SNAPSHOT_POLL_SECS=$POLL_SECS
export PATRONAGE__SERVER__DATA_DIR="$WORK/a"
echo 'benchmark owner password' | "$BIN" admin create --email bench@example.org --role owner >/dev/null

for replica in a b; do
  port=$PORT_A; [ $replica = b ] && port=$PORT_B
  PATRONAGE__SERVER__DATA_DIR="$WORK/$replica" PATRONAGE__SERVER__BIND="127.0.0.1:$port" \
    "$BIN" serve 2>"$WORK/serve-$replica.log" &
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
token=$(curl -sf -X POST "http://127.0.0.1:$PORT_A/api/v1/admin/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.org","password":"benchmark owner password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

printf 'two replicas on PostgreSQL; %s tiers created on A, each polled for on B; public.snapshot_poll_secs = %s\n' \
  "$ROUNDS" "$POLL_SECS"
python3 - "$PORT_A" "$PORT_B" "$token" "$ROUNDS" "$PAUSE_MS" <<'PY'
import http.client, json, math, sys, time

port_a, port_b, token, rounds, pause_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
a = http.client.HTTPConnection("127.0.0.1", int(port_a))
b = http.client.HTTPConnection("127.0.0.1", int(port_b))

def tiers_on_b():
    b.request("GET", "/api/v1/tiers")
    r = b.getresponse()
    return r.read()

from_answer, from_request = [], []
for i in range(rounds):
    name = f"replicas-bench-{i}"
    body = json.dumps({"kind": "patron", "name": name, "amount_minor": 500 + i, "interval": "month"})
    sent = time.monotonic()
    a.request("POST", "/api/v1/admin/tiers", body,
              {"content-type": "application/json", "authorization": "Bearer " + token})
    r = a.getresponse()
    r.read()
    if r.status >= 300:
        sys.exit(f"creating a tier on A: {r.status}")
    answered = time.monotonic()
    needle = ('"name":"%s"' % name).encode()
    while needle not in tiers_on_b():
        if time.monotonic() - sent > 30:
            sys.exit(f"{name} not visible on B after 30 s")
        time.sleep(0.001)
    seen = time.monotonic()
    from_answer.append((seen - answered) * 1000)
    from_request.append((seen - sent) * 1000)
    time.sleep(pause_ms / 1000)

def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]

print("| measured from | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|")
for label, xs in (("A's answer (committed)", from_answer), ("request sent to A", from_request)):
    print(f"| {label} | {pct(xs, 50):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |")
PY
