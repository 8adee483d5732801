#!/usr/bin/env bash
# Checks that /api/openapi.json describes the API it serves: schemathesis
# (`st run --checks all`) against a real `patronage serve` with an owner
# token, once with payments off and once with payments on against the
# tests' fake Stripe (examples/fake_stripe.rs). Exits non-zero on any failure.
#
#   tests/schemathesis.sh            # both modes
#   tests/schemathesis.sh off        # one mode: off or on
#
# Environment: ST_MAX_TIME (seconds per mode, default 120), ST_MAX_EXAMPLES
# (cases per operation and phase, default 30), ST_SEED, SCHEMATHESIS_VENV
# (where schemathesis is installed, default ~/.cache/patronage-schemathesis),
# ST_REPORT_DIR (keeps the JUnit reports and the server logs there).
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION="4.32"
MAX_TIME="${ST_MAX_TIME:-120}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"
if (($#)); then MODES=("$@"); else MODES=(off on); fi

echo "== schemathesis ${ST_VERSION}.x"
VENV="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/patronage-schemathesis}"
st_ok() { "$1" --version 2>/dev/null | grep -q "version ${ST_VERSION//./\\.}\."; }
if st_ok "$VENV/bin/st"; then
  ST="$VENV/bin/st"
elif command -v st >/dev/null && st_ok "$(command -v st)"; then
  ST="$(command -v st)"
else
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==${ST_VERSION}.*"
  ST="$VENV/bin/st"
  st_ok "$ST" || { echo "schemathesis ${ST_VERSION}.x could not be installed" >&2; exit 1; }
fi
"$ST" --version

echo "== cargo build --bin patronage --example fake_stripe"
cargo build --quiet --bin patronage --example fake_stripe
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
WORK="$(mktemp -d)"
# Copies: another build in a shared target directory may replace them.
cp "$TARGET_DIR/debug/patronage" "$TARGET_DIR/debug/examples/fake_stripe" "$WORK/"
PATRONAGE="$WORK/patronage"
FAKE_STRIPE="$WORK/fake_stripe"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs schemathesis against a fresh server; $1 is the mode, the rest are
# extra environment assignments for the server.
run_mode() {
  local mode="$1"; shift
  local dir="$WORK/$mode" port base token status=0
  mkdir -p "$dir"
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  local -a server_env=(
    "PATRONAGE__SERVER__BIND=127.0.0.1:$port"
    "PATRONAGE__SERVER__DATA_DIR=$dir/data"
    "PATRONAGE__DATABASE__URL="
    "PATRONAGE__MAIL__TRANSPORT=file"
    "PATRONAGE__LOG__LEVEL=warn"
    "PATRONAGE__JOBS__ENABLED=false"
    "$@"
  )
  local password="schemathesis-owner-password"
  echo "$password" | env "${server_env[@]}" "$PATRONAGE" admin create \
    --email owner@example.org --role owner >/dev/null
  env "${server_env[@]}" "$PATRONAGE" serve >"$dir/server.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$base/healthz" >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  token="$(curl -fsS -X POST "$base/api/v1/admin/login" -H 'content-type: application/json' \
    -d "{\"email\":\"owner@example.org\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

  # With payments off, the payment operations answer 503
  # payments-not-configured by design (and say so in the document).
  cp tests/schemathesis.toml "$dir/schemathesis.toml"
  if [[ "$mode" == off ]]; then
    cat >>"$dir/schemathesis.toml" <<'TOML'

[[operations]]
include-path-regex = "^/api/v1/(checkout|patron/(manage|portal)|admin/(stripe/sync|payments/\\{entry_id\\}/refund|pledges/\\{id\\}/cancel))$"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
TOML
  fi

  echo "== st run --checks all (payments $mode, ${MAX_TIME}s at most)"
  local -a seed=()
  [[ -n "${ST_SEED:-}" ]] && seed=(--seed "$ST_SEED")
  # From the temporary directory: schemathesis keeps a cache where it runs.
  # One worker: with two, hypothesis's lambda descriptions sometimes crash
  # inside Python's ast module ("AST constructor recursion depth mismatch").
  (cd "$dir" && "$ST" --config-file "$dir/schemathesis.toml" run "$base/api/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks all \
    --max-time "$MAX_TIME" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --report junit --report-dir "$dir/report" \
    "${seed[@]}") || status=$?
  if grep -q "panicked" "$dir/server.log"; then
    echo "the server panicked:" >&2
    grep -A3 "panicked" "$dir/server.log" >&2
    status=1
  fi
  if [[ -n "${ST_REPORT_DIR:-}" ]]; then
    mkdir -p "$ST_REPORT_DIR/$mode"
    cp -r "$dir/report" "$dir/server.log" "$ST_REPORT_DIR/$mode/" 2>/dev/null || true
  fi
  kill "${PIDS[-1]}" 2>/dev/null || true
  return "$status"
}

failed=()
for mode in "${MODES[@]}"; do
  case "$mode" in
    off)
      run_mode off || failed+=(off)
      ;;
    on)
      "$FAKE_STRIPE" >"$WORK/fake_stripe.out" 2>&1 &
      PIDS+=("$!")
      for _ in $(seq 1 100); do [[ -s "$WORK/fake_stripe.out" ]] && break; sleep 0.1; done
      stripe_base="$(head -n1 "$WORK/fake_stripe.out")"
      [[ "$stripe_base" == http://* ]] || { cat "$WORK/fake_stripe.out" >&2; exit 1; }
      run_mode on \
        "PATRONAGE__STRIPE__SECRET_KEY=sk_test_schemathesis" \
        "PATRONAGE__STRIPE__WEBHOOK_SECRET=whsec_test_patronage" \
        "PATRONAGE__STRIPE__API_BASE=$stripe_base" \
        "PATRONAGE__STRIPE__SUCCESS_URL=https://fund.example.org/thanks" \
        "PATRONAGE__STRIPE__CANCEL_URL=https://fund.example.org/support" \
        || failed+=(on)
      ;;
    *)
      echo "unknown mode $mode (off or on)" >&2
      exit 2
      ;;
  esac
done

if ((${#failed[@]})); then
  echo "schemathesis found failures with payments: ${failed[*]}" >&2
  exit 1
fi
echo "schemathesis: no failure"
