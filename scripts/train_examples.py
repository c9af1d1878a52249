#!/usr/bin/python3
"""Train the two example models and write them, with test subsets, to examples/.

Run with Debian's interpreter (python3-torch, python3-onnx, numpy):

    /usr/bin/python3 scripts/train_examples.py --out examples          # full run
    /usr/bin/python3 scripts/train_examples.py --out /tmp/ex --quick   # smoke run

Models
  vibration    1-D CNN over [batch, 3, 256] normalized accelerometer windows
               (data: scripts/vibration_sim.py), ONNX opset 13.
  fashion_mlp  ~3.2M-parameter MLP over [batch, 1, 28, 28] Fashion-MNIST images
               (data: Debian package dataset-fashion-mnist), ONNX opset 17.

Both are exported the way a user would (torch.onnx.export, eval mode, dynamic
batch axis, default constant folding) then get metadata_props added with onnx.
See examples/README.md for the files written.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vibration_sim  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MODEL_VERSION = "1.0.0"
SUBSET = 256  # samples in each committed test subset (keeps files < 1 MiB)


# --------------------------------------------------------------------------- models

class VibrationCNN(nn.Module):
    """Small 1-D CNN; layer choice covers the ops our importer must support:
    strided/padded Conv1d, a depthwise dilated Conv1d, BatchNorm1d, ReLU,
    MaxPool1d, AdaptiveAvgPool1d(1), flatten and Linear."""

    def __init__(self, n_classes=4):
        super().__init__()
        self.stem = nn.Sequential(  # [B,3,256] -> [B,32,128]
            nn.Conv1d(3, 32, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm1d(32), nn.ReLU())
        self.block1 = nn.Sequential(  # depthwise dilated + pointwise, -> [B,64,64]
            nn.Conv1d(32, 32, kernel_size=5, padding=4, dilation=2, groups=32, bias=False),
            nn.BatchNorm1d(32), nn.ReLU(),
            nn.Conv1d(32, 64, kernel_size=1, bias=False),
            nn.BatchNorm1d(64), nn.ReLU(),
            nn.MaxPool1d(2))
        self.block2 = nn.Sequential(  # dilated conv for a wide receptive field (low 1x freq)
            nn.Conv1d(64, 64, kernel_size=5, padding=4, dilation=2),
            nn.BatchNorm1d(64), nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(64, 64, kernel_size=3, padding=1),
            nn.BatchNorm1d(64), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class FashionMLP(nn.Module):
    """784-2048-768-10 MLP (~3.2M params). Normalization and the dynamic
    reshape live inside forward on purpose: they are the graph patterns
    (constant Sub/Div, Shape->Gather->Unsqueeze->Concat->Reshape) that real
    user exports contain and our importer has to handle."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 2048)
        self.bn1 = nn.BatchNorm1d(2048)
        self.drop1 = nn.Dropout(0.3)
        self.fc2 = nn.Linear(2048, 768)
        self.drop2 = nn.Dropout(0.3)
        self.fc3 = nn.Linear(768, 10)

    def forward(self, x):
        x = (x - 0.2860) / 0.3530              # exports as Sub/Div with constants
        x = x.reshape(x.size(0), -1)           # exports Shape->Gather->Unsqueeze->Concat->Reshape
        x = self.drop1(F.relu(self.bn1(self.fc1(x))))
        x = self.drop2(F.relu(self.fc2(x)))
        return self.fc3(x)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- training

def train(model, x_tr, y_tr, x_val, y_val, epochs, lr, batch, name, weight_decay=0.0):
    """Adam + cosine LR; prints one line per epoch. Tensors are CPU float/long."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(x_tr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    for ep in range(epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        tot_loss, correct = 0.0, 0
        for i in range(0, len(x_tr), batch):
            idx = perm[i:i + batch]
            xb, yb = x_tr[idx], y_tr[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        val_acc = accuracy(model, x_val, y_val)
        print(f"[{name}] epoch {ep + 1}/{epochs} loss {tot_loss / len(x_tr):.4f} "
              f"train_acc {correct / len(x_tr):.4f} val_acc {val_acc:.4f} "
              f"({time.time() - t0:.1f}s)", flush=True)
    model.eval()
    return model


@torch.no_grad()
def predict(model, x, batch=1024):
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def accuracy(model, x, y):
    return (predict(model, x).argmax(1) == y).float().mean().item()


# --------------------------------------------------------------------------- export

def export_onnx(model, example, path, opset, metadata):
    model.eval()
    torch.onnx.export(model, example, path, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    m = onnx.load(path)
    for k, v in metadata.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"exported {path} opset {opset}, {os.path.getsize(path)} bytes, ops: {' '.join(ops)}")
    return ops


def save_subset(out, prefix, model, x, y):
    """Write x/y/logits for the first SUBSET test samples; check logits are
    reproducible (two eval-mode passes, and one at batch 1 vs. batched)."""
    xs, ys = x[:SUBSET].contiguous(), y[:SUBSET]
    logits = predict(model, xs)
    again = predict(model, xs)
    assert torch.equal(logits, again), "eval-mode logits not reproducible"
    single = torch.cat([predict(model, xs[i:i + 1]) for i in range(8)])
    assert torch.allclose(single, logits[:8], atol=1e-4), "batch-1 logits differ"
    files = {f"{prefix}_test_x.bin": xs.numpy().astype("<f4"),
             f"{prefix}_test_y.bin": ys.numpy().astype(np.uint8),
             f"{prefix}_test_logits.bin": logits.numpy().astype("<f4")}
    for name, arr in files.items():
        arr.tofile(os.path.join(out, name))
        assert os.path.getsize(os.path.join(out, name)) < 1 << 20
    acc = (logits.argmax(1) == ys).float().mean().item()
    print(f"wrote {prefix} test subset: x{list(xs.shape)} logits{list(logits.shape)} "
          f"subset_acc {acc:.4f}")


# --------------------------------------------------------------------------- data

def read_idx(path):
    """Read a gzip'd IDX file (MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{FASHION_DIR}/{prefix}-images-idx3-ubyte.gz")
    y = read_idx(f"{FASHION_DIR}/{prefix}-labels-idx1-ubyte.gz")
    x = (x.astype(np.float32) / 255.0)[:, None, :, :]  # [N,1,28,28] in [0,1]
    return x, y


# --------------------------------------------------------------------------- jobs

def run_vibration(args):
    n_train, n_val, n_test = (2000, 500, 1024) if args.quick else (20000, 2000, 4096)
    epochs = args.epochs_vib or (2 if args.quick else 20)
    t0 = time.time()
    x_tr, y_tr = vibration_sim.generate(n_train, seed=vibration_sim.TRAIN_SEED)
    x_val, y_val = vibration_sim.generate(n_val, seed=vibration_sim.VAL_SEED)
    x_te, y_te = vibration_sim.generate(n_test, seed=vibration_sim.TEST_SEED)
    print(f"[vibration] simulated {n_train}/{n_val}/{n_test} windows in {time.time() - t0:.1f}s")

    # Per-axis statistics from the training set only; z carries ~1 g gravity.
    mean = x_tr.mean(axis=(0, 2)).astype(np.float64)
    std = x_tr.std(axis=(0, 2)).astype(np.float64)
    mean, std = [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
    norm = lambda a: torch.from_numpy(vibration_sim.normalize(a, mean, std))  # noqa: E731
    lbl = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    x_tr, x_val, x_te = norm(x_tr), norm(x_val), norm(x_te)
    y_tr, y_val, y_te = lbl(y_tr), lbl(y_val), lbl(y_te)

    torch.manual_seed(0)
    model = VibrationCNN(len(vibration_sim.CLASSES))
    print(f"[vibration] parameters: {n_params(model)}")
    t0 = time.time()
    train(model, x_tr, y_tr, x_val, y_val, epochs, lr=3e-3, batch=128, name="vibration",
          weight_decay=1e-4)
    train_s = time.time() - t0
    test_acc = accuracy(model, x_te, y_te)
    conf = np.zeros((4, 4), dtype=int)
    np.add.at(conf, (y_te.numpy(), predict(model, x_te).argmax(1).numpy()), 1)
    print(f"[vibration] test accuracy {test_acc:.4f} on {n_test} held-out windows "
          f"(seed {vibration_sim.TEST_SEED}); training {train_s:.0f}s\nconfusion (rows=true):\n{conf}")

    meta = {"model_name": "vibration", "classes": vibration_sim.CLASSES,
            "window": vibration_sim.WINDOW, "sample_rate_hz": vibration_sim.SAMPLE_RATE,
            "axes": ["x", "y", "z"], "units": "g", "mean": mean, "std": std, "axis": 1,
            "train_seed": vibration_sim.TRAIN_SEED, "test_seed": vibration_sim.TEST_SEED}
    with open(os.path.join(args.out, "vibration.meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    metadata = {"labels": json.dumps(vibration_sim.CLASSES), "model_name": "vibration",
                "model_version": MODEL_VERSION,
                "preprocessing": json.dumps({"mean": mean, "std": std, "axis": 1})}
    ops = export_onnx(model, x_te[:1], os.path.join(args.out, "vibration.onnx"), 13, metadata)
    save_subset(args.out, "vibration", model, x_te, y_te)
    return {"params": n_params(model), "test_acc": test_acc, "n_test": n_test,
            "train_s": train_s, "ops": ops}


def run_fashion(args):
    x_tr, y_tr = load_fashion("train")
    x_te, y_te = load_fashion("test")
    if args.quick:
        x_tr, y_tr = x_tr[:5000], y_tr[:5000]
    epochs = args.epochs_fashion or (1 if args.quick else 12)
    # Validation = last 5k of the training split; the test split is only used
    # for the final figure and the committed subset.
    x_tr, y_tr = torch.from_numpy(x_tr), torch.from_numpy(y_tr.astype(np.int64))
    x_te, y_te = torch.from_numpy(x_te), torch.from_numpy(y_te.astype(np.int64))
    n_val = len(x_tr) // 12
    x_val, y_val = x_tr[-n_val:], y_tr[-n_val:]
    x_tr, y_tr = x_tr[:-n_val], y_tr[:-n_val]

    torch.manual_seed(0)
    model = FashionMLP()
    print(f"[fashion_mlp] parameters: {n_params(model)}")
    t0 = time.time()
    train(model, x_tr, y_tr, x_val, y_val, epochs, lr=1e-3, batch=256, name="fashion_mlp")
    train_s = time.time() - t0
    test_acc = accuracy(model, x_te, y_te)
    print(f"[fashion_mlp] test accuracy {test_acc:.4f} on {len(x_te)} test images; "
          f"training {train_s:.0f}s")

    metadata = {"labels": json.dumps(FASHION_CLASSES), "model_name": "fashion_mlp",
                "model_version": MODEL_VERSION}
    ops = export_onnx(model, x_te[:1], os.path.join(args.out, "fashion_mlp.onnx"), 17, metadata)
    save_subset(args.out, "fashion", model, x_te, y_te)
    return {"params": n_params(model), "test_acc": test_acc, "n_test": len(x_te),
            "train_s": train_s, "ops": ops}


def main():
    p = argparse.ArgumentParser(description="Train and export the example models.")
    p.add_argument("--out", default="examples")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (minutes -> seconds)")
    p.add_argument("--epochs-vib", type=int, help="vibration epochs (default 20)")
    p.add_argument("--epochs-fashion", type=int, help="fashion_mlp epochs (default 12)")
    p.add_argument("--only", choices=["vibration", "fashion"], help="train just one model")
    args = p.parse_args()

    torch.set_num_threads(2)
    np.random.seed(0)
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    results = {}
    if args.only in (None, "vibration"):
        results["vibration"] = run_vibration(args)
    if args.only in (None, "fashion"):
        results["fashion_mlp"] = run_fashion(args)
    print(f"\nSUMMARY (total {time.time() - t0:.0f}s)")
    for name, r in results.items():
        print(f"  {name}: params {r['params']}, test_acc {r['test_acc']:.4f} "
              f"(n={r['n_test']}), train {r['train_s']:.0f}s, ops {' '.join(r['ops'])}")
    for f in sorted(os.listdir(args.out)):
        print(f"  {f}: {os.path.getsize(os.path.join(args.out, f))} bytes")


if __name__ == "__main__":
    main()
