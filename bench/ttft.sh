#!/usr/bin/env bash
# Time to the first answer of `hearth ask` on a real repository (issue 21 item 1): a fresh
# process each time, the index already present, -n 1 so the process ends at the first token.
#   cold:  no prefix cache (.hearth/kv/ emptied first)
#   warm:  the same question again in a new process (the prefix cache from the cold run)
#   other: another question in a new process (the system turn from the cache)
#   off:   the other question with --no-prefix-cache (what every process paid before)
# Each run's breakdown comes from `ask -v`: model load, index update, prompt tokens (reused),
# prompt decode; the rest of the wall time is context building (retrieval, map) and exit.
# Usage: bench/ttft.sh [MODEL] [THREADS=2] [REPO=this repository] [BUILD_DIR=build/release]
# Without MODEL a random-weight E4B-size Q4_K_M is made once in $TMPDIR (real dimensions).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${4:-build/release}"
hearth="$(pwd)/$build/src/cli/hearth"
threads="${2:-2}"
model="${1:-}"
if [ -z "$model" ]; then
  model="${TMPDIR:-/tmp}/hearth-bench-e4b.Q4_K_M.gguf"
  [ -f "$model" ] || "$hearth" make-model --like e4b --type Q4_K_M -o "$model"
fi
# A copy of the repository's tracked files, so that .hearth/ of the checkout is left alone.
repo="${3:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$repo" ]; then
  git ls-files -z | xargs -0 -I{} cp --parents {} "$work"/ 2>/dev/null || true
else
  cp -r "$repo"/. "$work"/
fi
mkdir -p "$work/.git"
cd "$work"
"$hearth" index >/dev/null 2>&1
export XDG_CONFIG_HOME="$work/.config"
q1="where does the agent decide which tool to call?"
q2="how does the server limit the size of a request body?"
run() {
  local label="$1" question="$2"; shift 2
  local start end out
  start=$(date +%s.%N)
  out=$("$hearth" ask -m "$model" -t "$threads" -n 1 --max-steps 1 --permissions read-only -v \
        "$@" "$question" </dev/null 2>&1 >/dev/null) || { echo "$out"; exit 1; }
  end=$(date +%s.%N)
  local load index step
  load=$(grep -o 'model loaded in [0-9.]* s' <<<"$out" | grep -o '[0-9.]*' | head -1)
  index=$(grep -o 'index up to date in [0-9.]* s' <<<"$out" | grep -o '[0-9.]*' | head -1)
  step=$(grep -o 'step 1: .*' <<<"$out" | head -1)
  printf '%-6s wall %7.2f s | load %s s | index %s s | %s\n' "$label" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$load" "$index" "${step#step 1: }"
}
echo "ttft: $(basename "$model"), $threads threads, repository $(git -C "$OLDPWD" rev-parse --short HEAD 2>/dev/null || echo "$repo"), load $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf .hearth/kv
run cold "$q1"
run warm "$q1"
run other "$q2"
run off "$q2" --no-prefix-cache
du -sh .hearth/kv | sed 's/^/ttft: prefix cache on disk: /'
