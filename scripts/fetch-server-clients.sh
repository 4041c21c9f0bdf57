#!/usr/bin/env bash
# Installs the npm packages the server's client and browser tests use (tests/server/clients):
# the official `openai` and `ollama` clients and `playwright-core`, at the exact versions of
# package.json, each tarball checked against the sha512 integrity pinned in package-lock.json
# (`npm ci` refuses a mismatch). --ignore-scripts: nothing from the packages runs at install.
# Output: tests/server/clients/node_modules/ (git-ignored). Skips quietly without npm: the
# tests then report "skipped".
set -euo pipefail
cd "$(dirname "$0")/../tests/server/clients"
command -v npm >/dev/null || { echo "fetch-server-clients: npm not found; client tests will be skipped" >&2; exit 0; }
stamp=node_modules/.hearth-stamp
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0  # already installed at these pins
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
