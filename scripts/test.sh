#!/usr/bin/env bash
# Builds and runs the whole test suite. Usage: scripts/test.sh [release|debug|asan] [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
cmake --preset "$preset" ${HEARTH_WERROR:+-DHEARTH_WERROR=$HEARTH_WERROR} >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j "$(nproc)" "$@"
