#!/usr/bin/env bash
# Load test for `hearth serve` (not part of ctest): starts the server on a free loopback port
# with the tiny fixture model, runs bench/serve_load.mjs (concurrent streaming clients for a
# fixed time), checks zero 5xx and bounded RSS growth, and stops the server.
# Usage: bench/serve_load.sh [SECONDS=60] [CLIENTS=8] [PARALLEL=2] [BUILD_DIR=build/release]
# Passes when: no 5xx, no transport errors, and peak RSS at most RSS_BOUND_KIB (default 65536)
# above the RSS after the first 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"; clients="${2:-8}"; parallel="${3:-2}"; build="${4:-build/release}"
bound="${RSS_BOUND_KIB:-65536}"
model=../shared/fixtures/models/tiny-e.Q8_0.gguf
log=$(mktemp)
"$build/src/cli/hearth" serve -m "$model" --port 0 --parallel "$parallel" -c 1024 --max-queue 256 \
  2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 || true)
  [ -n "$url" ] && curl -sf "$url/health" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "serve_load: server did not start" >&2; exit 1; }
out=$(node bench/serve_load.mjs "$url" "$pid" "$seconds" "$clients") || { echo "$out"; exit 1; }
echo "$out"
curl -s "$url/metrics" | grep -E '^hearth_(requests_total|completion_tokens_total|generations_cancelled_total|generation_seconds_(sum|count))' || true
growth=$(node -e 'const s=JSON.parse(process.argv[1]); console.log(s.rss_kib.peak - s.rss_kib.after_warmup)' "$out")
echo "serve_load: RSS growth after warm-up: ${growth} KiB (bound ${bound} KiB)"
[ "$growth" -le "$bound" ] || { echo "serve_load: RSS grew beyond the bound" >&2; exit 1; }
echo "serve_load: passed"
