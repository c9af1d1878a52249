#!/usr/bin/env bash
# Configures and builds edgeinfer (Release) in ./build. Usage: scripts/build.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 || { cat build.log; exit 1; }
if ! cmake --build build -j "$(nproc)" ${1:+--target "$@"} >> build.log 2>&1; then
  grep -E -B2 -A6 'error|Error' build.log | head -80
  echo "build failed: see build.log" >&2
  exit 1
fi
rm -f build.log
