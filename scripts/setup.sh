#!/usr/bin/env bash
# Installs every Debian package that edgeinfer's build, tests and demo need. Idempotent; run as
# root on Debian 12. With --train it also installs what scripts/train_examples.py needs.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-dev                                  # FP32 GEMM
  libonnx-dev libprotobuf-dev protobuf-compiler    # ONNX import
  libonnx-testdata                                 # ONNX's backend node tests (conformance)
  nlohmann-json3-dev libsimdjson-dev libtomlplusplus-dev
  libsqlite3-dev libpaho-mqttpp-dev libpaho-mqtt-dev libsystemd-dev
  libgtest-dev
  mosquitto mosquitto-clients                      # the real broker of tests and demo
  systemd                                          # systemd-analyze verify in the tests
  g++-aarch64-linux-gnu qemu-user                  # the NEON kernels' test (scripts/test_arm64.sh)
)
if [[ "${1:-}" == "--train" ]]; then
  packages+=(python3-torch python3-onnx python3-numpy dataset-fashion-mnist)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
