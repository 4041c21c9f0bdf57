#!/usr/bin/env bash
# hearth's main job as it stands today, run by scripts/setup.sh after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
hearth=build/release/src/cli/hearth
"$hearth" --version
"$hearth" info -m ../shared/fixtures/models/tiny-e.Q4_K_M.gguf
# The codebase index of this repository: build (or update) .hearth/index.db, then use it.
"$hearth" index .
"$hearth" search --limit 5 "where does the index walk the tree and honour gitignore"
"$hearth" symbols BuildIndex
"$hearth" map --tokens 512
