#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzzers
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(find build/fuzz/fuzz -maxdepth 1 -type f -name '*_fuzz' -printf '%f\n' | sort)
fi
for t in "${targets[@]}"; do
  corpus="build/fuzz/corpus/$t"
  mkdir -p "$corpus"
  seeds="fuzz/seeds/$t"
  echo "fuzz: $t for ${seeds:+}${seconds}s"
  args=("$corpus")
  [ -d "$seeds" ] && args+=("$seeds")
  log="build/fuzz/$t.log"
  # The whole report goes to a log; on a finding its end (the stack and the input's name) is shown.
  if ! LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp" build/fuzz/fuzz/"$t" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -artifact_prefix=build/fuzz/ \
    -print_final_stats=1 "${args[@]}" >"$log" 2>&1; then
    grep -v -E '^#[0-9]+' "$log" | tail -n 60
    echo "fuzz: $t FOUND A PROBLEM (full log: $log)"
    exit 1
  fi
  tail -n 3 "$log"
  echo "fuzz: $t ran ${seconds}s without a crash"
done
