#!/usr/bin/env bash
# ctest wrapper for the node tests: exit 77 (skipped) when node is missing; the .mjs files skip
# themselves when their pinned npm packages are not installed.
set -euo pipefail
command -v node >/dev/null || { echo "skipped: node is not installed"; exit 77; }
cd "$(dirname "$0")"
exec node "$@"
