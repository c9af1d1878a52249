#!/usr/bin/env bash
# Builds the Debian package: configures a Release build (if needed), builds the packaged binaries
# and runs `cpack -G DEB`. Prints the path of the .deb on the last line.
#
#   scripts/package.sh [BUILD_DIR]        # default: build-package at the repository root
#
# Install and enable on a device:
#   sudo apt install ./edgeinfer_VERSION_ARCH.deb
#   sudo editor /etc/edgeinfer/edgeinfer-agent.toml
#   sudo systemctl enable --now edgeinfer-agent
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-package}
jobs=${JOBS:-$(nproc)}

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
# Only what the package holds (cpack does not build: see cmake/Packaging.cmake).
cmake --build "$build" -j "$jobs" --target edgeinfer-agent edgeinfer-simulate edgeinfer

out=$build/package
mkdir -p "$out"
(cd "$build" && cpack -G DEB -B "$out" >&2)
deb=$(ls -t "$out"/edgeinfer_*.deb | head -n 1)
dpkg-deb --info "$deb" >&2
echo "$deb"
