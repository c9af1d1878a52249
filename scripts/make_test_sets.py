#!/usr/bin/python3
"""Write the FULL test sets for benchmarks (numpy only, no torch).

    /usr/bin/python3 scripts/make_test_sets.py build/testsets

Writes to the given folder (not committed; use build/ or .cache/):
  fashion_x.bin    float32 LE [10000,1,28,28], pixels in [0,1]  (Fashion-MNIST test split,
                   from Debian's dataset-fashion-mnist)
  fashion_y.bin    uint8 [10000]
  vibration_x.bin  float32 LE [4096,3,256], already normalized with
                   examples/vibration.meta.json (held-out seed vibration_sim.TEST_SEED)
  vibration_y.bin  uint8 [4096]

and the calibration inputs for `edgeinfer convert --precision int8-static --calibration X.bin`,
drawn from data the test sets never use (no labels: calibration only observes activations):
  fashion_calib_x.bin    float32 LE [1000,1,28,28], pixels in [0,1]: the first 1000 images of a
                         fixed shuffle (numpy seed CALIB_SEED) of the Fashion-MNIST TRAIN split
  vibration_calib_x.bin  float32 LE [512,3,256], normalized like vibration_x.bin, simulated
                         with seed CALIB_SEED (not TEST_SEED, TRAIN_SEED or VAL_SEED)

The first 256 entries of each test set equal the committed examples/*_test_{x,y}.bin.
With --example-calib, also (re)writes the committed examples/{fashion,vibration}_calib_x.bin:
the first EXAMPLE_CALIB_COUNT (32) samples of the calibration files (about 100 KB each), which
tests/onnx/quantized_examples_test.cc calibrates the int8-static example models with.
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vibration_sim  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
VIBRATION_COUNT = 4096
FASHION_CALIB_COUNT = 1000
VIBRATION_CALIB_COUNT = 512
EXAMPLE_CALIB_COUNT = 32
CALIB_SEED = 77  # differs from vibration_sim's TRAIN_SEED (1), VAL_SEED (2) and TEST_SEED (1234)


def read_idx(path):
    """Read a gzip'd IDX file (MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    p = argparse.ArgumentParser(description="Write full Fashion-MNIST and vibration test sets.")
    p.add_argument("out", help="output folder, e.g. build/testsets")
    p.add_argument("--meta", default=os.path.join(HERE, "..", "examples", "vibration.meta.json"))
    p.add_argument("--example-calib", action="store_true",
                   help="also write examples/*_calib_x.bin (the first 32 calibration samples)")
    a = p.parse_args()
    examples = os.path.join(HERE, "..", "examples")
    os.makedirs(a.out, exist_ok=True)

    x = read_idx(f"{FASHION_DIR}/t10k-images-idx3-ubyte.gz")
    y = read_idx(f"{FASHION_DIR}/t10k-labels-idx1-ubyte.gz")
    x = (x.astype(np.float32) / 255.0)[:, None, :, :]  # same scaling as training
    x.astype("<f4").tofile(os.path.join(a.out, "fashion_x.bin"))
    y.astype(np.uint8).tofile(os.path.join(a.out, "fashion_y.bin"))
    print(f"fashion: x{list(x.shape)} float32, y[{len(y)}] uint8")

    train = read_idx(f"{FASHION_DIR}/train-images-idx3-ubyte.gz")
    pick = np.random.default_rng(CALIB_SEED).permutation(len(train))[:FASHION_CALIB_COUNT]
    xc = (train[pick].astype(np.float32) / 255.0)[:, None, :, :]
    xc.astype("<f4").tofile(os.path.join(a.out, "fashion_calib_x.bin"))
    print(f"fashion calibration: x{list(xc.shape)} float32 (train split)")
    if a.example_calib:
        xc[:EXAMPLE_CALIB_COUNT].astype("<f4").tofile(os.path.join(examples, "fashion_calib_x.bin"))

    with open(a.meta) as f:
        meta = json.load(f)
    # Same call as train_examples.py makes for its test set, so the committed
    # 256-sample subset is the head of this one.
    xv, yv = vibration_sim.generate(VIBRATION_COUNT, window=meta["window"],
                                    seed=meta["test_seed"], sample_rate=meta["sample_rate_hz"])
    xv = vibration_sim.normalize(xv, meta["mean"], meta["std"])
    xv.astype("<f4").tofile(os.path.join(a.out, "vibration_x.bin"))
    yv.tofile(os.path.join(a.out, "vibration_y.bin"))
    print(f"vibration: x{list(xv.shape)} float32 (normalized), y[{len(yv)}] uint8, "
          f"seed {meta['test_seed']}")

    assert CALIB_SEED not in (meta["test_seed"], vibration_sim.TEST_SEED, vibration_sim.TRAIN_SEED,
                              vibration_sim.VAL_SEED)
    xvc, _ = vibration_sim.generate(VIBRATION_CALIB_COUNT, window=meta["window"], seed=CALIB_SEED,
                                    sample_rate=meta["sample_rate_hz"])
    xvc = vibration_sim.normalize(xvc, meta["mean"], meta["std"])
    xvc.astype("<f4").tofile(os.path.join(a.out, "vibration_calib_x.bin"))
    print(f"vibration calibration: x{list(xvc.shape)} float32 (normalized), seed {CALIB_SEED}")
    if a.example_calib:
        xvc[:EXAMPLE_CALIB_COUNT].astype("<f4").tofile(
            os.path.join(examples, "vibration_calib_x.bin"))


if __name__ == "__main__":
    main()
