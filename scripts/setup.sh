#!/usr/bin/env bash
# Sets up everything hearth needs on Debian 12, builds a Release binary, and runs hearth's main
# job on this repository. Usage: scripts/setup.sh [--deps-only | --no-run]
#   --deps-only  install packages and fetch pinned npm sources, do not build
#   --no-run     build but do not run the main job
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-all}"

# 1. Debian packages (only the missing ones; apt-get update runs once, and only if needed).
mapfile -t wanted < <(grep -v '^\s*#' scripts/debian-packages.txt | sed '/^\s*$/d')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node.js and npm fetch the pinned grammar sources and test clients. Machines that already have
# them (often from NodeSource, whose nodejs bundles npm) keep theirs: Debian's npm package would
# conflict with it.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# 2. Pinned, checksummed sources from npm (tree-sitter grammars and test clients), if any.
for fetch in scripts/fetch-*.sh; do
  [ -e "$fetch" ] && bash "$fetch"
done

[ "$mode" = "--deps-only" ] && exit 0

# 3. Release build.
cmake --preset release ${HEARTH_WERROR:+-DHEARTH_WERROR=$HEARTH_WERROR} >/dev/null
cmake --build --preset release

[ "$mode" = "--no-run" ] && exit 0

# 4. The main job.
bash scripts/main-job.sh
