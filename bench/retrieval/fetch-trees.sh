#!/usr/bin/env bash
# Fetches the Debian source trees of the retrieval benchmark (../shared/fixtures/retrieval/) with
# apt-get source, using a PRIVATE apt configuration (a deb-src list and package lists under
# WORK/apt) so the system's sources are never touched. Then unpacks them with the shared
# retrieval_build.py, which checks every SHA-256 against the manifest.
# Usage: bench/retrieval/fetch-trees.sh [WORK] [MANIFEST]   (WORK defaults to build/debsrc)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(realpath -m "${1:-build/debsrc}")
manifest=${2:-../shared/fixtures/retrieval/public_manifest.json}
apt="$work/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$work/dl" "$work/trees"
cat >"$apt/sources.list" <<SRC
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
SRC
cat >"$apt/apt.conf" <<CONF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "$apt/empty.d";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt/cache";
APT::Sandbox::User "root";
CONF
mkdir -p "$apt/empty.d"
export APT_CONFIG="$apt/apt.conf"
apt-get update -qq
python3 ../shared/tools/retrieval_build.py fetch --manifest "$manifest" \
  --dl "$work/dl" --trees "$work/trees"
