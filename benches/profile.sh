#!/usr/bin/env bash
# Where a public view's time goes: `perf record` on `patronage serve` while
# wrk loads one path, then the top functions by self time and the share
# per crate (kernel included). A small seed: the views are served from
# memory, so their cost does not depend on it.
#
#   bash benches/profile.sh                       # /api/v1/funding
#   BIN=/path/to/patronage URLPATH=/healthz bash benches/profile.sh
#
# Knobs: URLPATH DURATION CONNECTIONS THREADS TOP BIN
set -euo pipefail
cd "$(dirname "$0")/.."

URLPATH=${URLPATH:-/api/v1/funding}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TOP=${TOP:-25}
PORT=18082
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null

if [ -z "${BIN:-}" ]; then
  nice -n 10 cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/patronage
fi
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export PATRONAGE__DATABASE__URL="sqlite://$WORK/patronage.db"
export PATRONAGE__SERVER__DATA_DIR="$WORK"
export PATRONAGE__SERVER__BIND="127.0.0.1:$PORT"
export PATRONAGE__LOG__LEVEL=warn
export PATRONAGE__AUTH__JWT_SECRET=benchmark-secret-benchmark-secret-0000
"$BIN" seed --patrons 1000 --sponsors 100 --ledger-entries 10000 >/dev/null
"$BIN" serve 2>"$WORK/serve.log" &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((DURATION + 2))s" "http://127.0.0.1:$PORT$URLPATH" > "$WORK/wrk.out" &
sleep 1
perf record -q -F 999 -p "$server" -o "$WORK/perf.data" -- sleep "$DURATION" 2>/dev/null
wait %2 2>/dev/null || true
printf '%s: %s\n' "$URLPATH" "$(awk '/Requests\/sec/ {print $2 " req/s (under perf)"}' "$WORK/wrk.out")"

perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
  | awk '/^ +[0-9.]+%/' > "$WORK/symbols"
printf '\ntop %s functions by self time:\n' "$TOP"
head -n "$TOP" "$WORK/symbols" | cut -c1-160
printf '\nshare by crate:\n'
python3 - "$WORK/symbols" <<'PY'
import re, sys, collections

def crate(sym):
    """The crate a demangled Rust symbol belongs to: `<A as B>::f` is A's,
    unless A is a type parameter or from core/alloc/std, then B's;
    `drop_in_place<X>` is X's."""
    m = re.match(r"core::ptr::drop_in_place<(.*)>$", sym)
    if m:
        return crate(m[1].lstrip("&"))
    m = re.match(r"<(.+?) as (.+?)>::", sym)
    if m:
        own = crate(m[1])
        return crate(m[2]) if own in ("core", "alloc", "std", "generic") else own
    head = re.split(r"::|<", sym.lstrip("<(&"), maxsplit=1)[0]
    return "generic" if re.fullmatch(r"[A-Z]|\[.*|\(.*|u8|str", head) else head

share = collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$", line)
    if not m:
        continue
    pct, dso, kind, sym = float(m[1]), m[2], m[3], m[4]
    if kind == "k":
        name = "kernel"
    elif dso.startswith("patronage"):
        name = "unknown" if sym.startswith("0x") else crate(sym)
    else:
        name = dso
    share[name] += pct
for name, pct in share.most_common(15):
    print(f"{pct:6.2f}%  {name}")
PY
kill -TERM "$server"; wait "$server" 2>/dev/null || true
