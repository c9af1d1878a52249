#!/usr/bin/env bash
# The main job, as far as it exists today: installs, builds, converts the example models and
# runs the engine on them, printing results. (The agent issue turns this into the full MQTT
# demo: private Mosquitto, simulated sensors, results as they arrive.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh edgeinfer
tool=build/inference/edgeinfer
out=build/models
mkdir -p "$out"

for m in vibration fashion_mlp; do
  "$tool" convert "examples/$m.onnx" -o "$out/$m.eim"
done
prefix=(vibration fashion)
for i in 0 1; do
  m=$([[ $i == 0 ]] && echo vibration || echo fashion_mlp)
  p=${prefix[$i]}
  echo
  echo "== $m: first predictions (sample, class, label, score)"
  "$tool" run "$out/$m.eim" --data "examples/${p}_test_x.bin" | head -8
  echo "== $m: accuracy on the committed test subset"
  "$tool" eval "$out/$m.eim" --data "examples/${p}_test_x.bin" --labels "examples/${p}_test_y.bin"
done
echo
echo "== vibration model"
"$tool" inspect "$out/vibration.eim"
