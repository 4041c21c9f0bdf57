#!/usr/bin/env bash
# Builds llama.cpp (the baseline hearth is measured against) in a temporary folder, outside the
# repository, from the git bundle that the npm package node-llama-cpp ships. Nothing from it ever
# enters the repository.
#
# Usage: tools/build-llama-baseline.sh [--mtmd] [--spec] [WORKDIR]
#   (default WORKDIR: /tmp/hearth-llama-baseline)
# Prints the directory holding llama-bench, llama-tokenize and llama-quantize; with --mtmd also
# llama-mtmd-cli (the image/audio encoder baseline, tools/mtmd in llama.cpp); with --spec also
# llama-speculative and llama-lookup (the speculative decoding baselines, examples/ in llama.cpp).
set -euo pipefail
targets=(llama-bench llama-tokenize llama-quantize)
tools=ON  # llama-bench, llama-tokenize and llama-quantize live in tools/
examples=OFF
while [ $# -gt 0 ]; do
  case "$1" in
    --mtmd) targets+=(llama-mtmd-cli); shift ;;
    --spec) targets+=(llama-speculative llama-lookup); examples=ON; shift ;;
    *) break ;;
  esac
done
work="${1:-/tmp/hearth-llama-baseline}"
version=3.22.1
integrity="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="
mkdir -p "$work"
cd "$work"

tarball="node-llama-cpp-$version.tgz"
if [ ! -f "$tarball" ]; then
  npm pack "node-llama-cpp@$version" >/dev/null 2>&1
fi
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$integrity" ]; then
  echo "build-llama-baseline: checksum mismatch for $tarball" >&2
  exit 1
fi
if [ ! -d package ]; then tar xzf "$tarball"; fi
if [ ! -d llama.cpp ]; then git clone -q package/llama/gitRelease.bundle llama.cpp; fi

cd llama.cpp
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES="$examples" -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS="$tools" >/dev/null
cmake --build build -j "$(nproc)" --target "${targets[@]}" >/dev/null
echo "$work/llama.cpp/build/bin"
