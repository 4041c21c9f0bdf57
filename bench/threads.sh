#!/usr/bin/env bash
# Decode (tg) and prefill (pp) of one model at several thread counts, for one or more hearth
# binaries side by side, interleaved (binary A, binary B, A, B, ... for each thread count), so
# that a slow spell of the machine hits both. Issue 21 item 5: more threads than cores must not
# collapse. Prints one markdown row per binary and thread count: median (min–max) tokens/s.
#
#   bench/threads.sh -m e2b.Q4_K_M.gguf -t 1,2,4,8 -p 128 -n 32 -r 3 \
#       old=/tmp/hearth-main new=build/release/src/cli/hearth
set -euo pipefail

model="" threads="1,2,4,8" n_prompt=128 n_gen=32 reps=3
usage() {
  echo "usage: $0 -m MODEL [-t 1,2,4,8] [-p 128] [-n 32] [-r 3] NAME=HEARTH_BINARY..." >&2
  exit 2
}
while getopts "m:t:p:n:r:" opt; do
  case "$opt" in
    m) model="$OPTARG" ;;
    t) threads="$OPTARG" ;;
    p) n_prompt="$OPTARG" ;;
    n) n_gen="$OPTARG" ;;
    r) reps="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ -n "$model" && $# -ge 1 ]] || usage
[[ -f "$model" ]] || { echo "$0: no model file '$model'" >&2; exit 3; }
for spec in "$@"; do
  [[ "$spec" == *=* && -x "${spec#*=}" ]] || { echo "$0: '$spec' is not NAME=EXECUTABLE" >&2; exit 2; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "# $(date -u) load: $(cut -d' ' -f1-3 /proc/loadavg); model $model; -p $n_prompt -n $n_gen" >&2
IFS=, read -ra thread_list <<<"$threads"
for t in "${thread_list[@]}"; do
  for ((r = 0; r < reps; ++r)); do
    for spec in "$@"; do
      name="${spec%%=*}" bin="${spec#*=}"
      # One repetition per call, so the binaries alternate within each thread count.
      "$bin" bench -m "$model" -t "$t" -p "$n_prompt" -n "$n_gen" -r 1 --json \
        >>"$out/$name.$t.jsonl"
    done
  done
done
echo "# done $(date -u) load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo "| binary | threads | pp$n_prompt tokens/s | tg$n_gen tokens/s |"
echo "|---|---:|---:|---:|"
for t in "${thread_list[@]}"; do
  for spec in "$@"; do
    name="${spec%%=*}"
    python3 - "$out/$name.$t.jsonl" "$name" "$t" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def cell(key):
    v = sorted(r[key] for r in rows)
    return f"{statistics.median(v):.2f} ({v[0]:.2f}–{v[-1]:.2f})"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {cell('pp_tokens_per_s')} | {cell('tg_tokens_per_s')} |")
PY
  done
done
