#!/usr/bin/env bash
# Builds the quantized kernels' tests for aarch64 (Debian's cross compiler) and runs them under
# qemu-user: the NEON and NEON dot-product kernels against the scalar reference.
#
# usage: scripts/test_arm64.sh [--build-dir DIR]   (default build/arm64)
# Needs g++-aarch64-linux-gnu, qemu-user and libgtest-dev (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/arm64
while (($#)); do
  case "$1" in
    --build-dir) build=${2:?--build-dir needs a value}; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test_arm64: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "test_arm64: $tool is missing (scripts/setup.sh)" >&2; exit 1; }
done
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S tests/arm64 -B "$build" -DCMAKE_TOOLCHAIN_FILE="$(pwd)/cmake/toolchain-aarch64.cmake" \
  "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure
