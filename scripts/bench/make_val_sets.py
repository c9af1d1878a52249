#!/usr/bin/python3
"""Labelled validation sets for `edgeinfer convert --precision auto` in scripts/bench_quant.sh.

usage: make_val_sets.py DIR

auto measures each layer's sensitivity on --eval-data/--eval-labels; choosing a plan on the test
set would flatter the test accuracy the benchmark then reports, so the plan is chosen on data
the test sets never hold:
  fashion_val_x.bin / fashion_val_y.bin      2000 images of the Fashion-MNIST TRAIN split (a
                                             fixed shuffle, seed VAL_PICK_SEED), pixels in [0,1]
  vibration_val_x.bin / vibration_val_y.bin  1024 windows simulated with vibration_sim.VAL_SEED
                                             (the seed training used for model selection),
                                             normalized with examples/vibration.meta.json
float32 little-endian samples and uint8 labels, as `edgeinfer eval` reads them.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import make_test_sets  # noqa: E402  (read_idx, FASHION_DIR)
import vibration_sim  # noqa: E402

VAL_PICK_SEED = 78
FASHION_VAL_COUNT = 2000
VIBRATION_VAL_COUNT = 1024


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__.split("\n\n")[1])
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    d = make_test_sets.FASHION_DIR
    x = make_test_sets.read_idx(f"{d}/train-images-idx3-ubyte.gz")
    y = make_test_sets.read_idx(f"{d}/train-labels-idx1-ubyte.gz")
    pick = np.random.default_rng(VAL_PICK_SEED).permutation(len(x))[:FASHION_VAL_COUNT]
    (x[pick].astype(np.float32) / 255.0)[:, None].astype("<f4").tofile(
        os.path.join(out, "fashion_val_x.bin"))
    y[pick].astype(np.uint8).tofile(os.path.join(out, "fashion_val_y.bin"))
    with open(os.path.join(HERE, "..", "..", "examples", "vibration.meta.json")) as f:
        meta = json.load(f)
    xv, yv = vibration_sim.generate(VIBRATION_VAL_COUNT, window=meta["window"],
                                    seed=vibration_sim.VAL_SEED,
                                    sample_rate=meta["sample_rate_hz"])
    xv = vibration_sim.normalize(xv, meta["mean"], meta["std"])
    xv.astype("<f4").tofile(os.path.join(out, "vibration_val_x.bin"))
    yv.astype(np.uint8).tofile(os.path.join(out, "vibration_val_y.bin"))
    print(f"validation sets: fashion {FASHION_VAL_COUNT}, vibration {VIBRATION_VAL_COUNT} in {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
