#!/usr/bin/python3
"""PyTorch dynamic INT8 side of scripts/bench_quant.sh.

usage: torch_dynamic.py MODEL.onnx --data X.bin --labels L.bin [--threads N] [--repeats R]
                        [--warmup W] [--engine onednn|qnnpack|fbgemm] [--float]

Rebuilds the example model (fashion_mlp or vibration, told apart by the ONNX file's
initializers) as its torch module from scripts/train_examples.py, loads the ONNX weights into it
(the vibration export has its batch norms folded into the convs; they become identity norms
carrying the conv biases), checks the float module against the ONNX file's committed logits
(examples/*_test_logits.bin), then applies torch.ao.quantization.quantize_dynamic to its Linear
layers (int8 weights per tensor, activations quantized per batch at run time; convs stay float,
as torch's dynamic quantization does not cover them). --float skips the quantization.

Prints one JSON object in the schema of `edgeinfer bench --json` (results per batch 1 and 16,
latency percentiles, throughput = batch * repeats / timed seconds, the same percentile rule),
plus accuracy on X.bin/L.bin, the engine, torch's version and private_bytes (Anonymous of
/proc/self/smaps_rollup: the whole Python + torch process, so not comparable byte for byte).
Progress on stderr.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import train_examples  # noqa: E402  (the model classes; importing trains nothing)


def anonymous_bytes():
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def build(onnx_path):
    m = onnx.load(onnx_path)
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    if "fc1.weight" in inits:
        model = train_examples.FashionMLP()
        state = {k: v for k, v in inits.items() if k in model.state_dict()}
        model.load_state_dict(state, strict=False)
        return model.eval(), "fashion", [1, 28, 28]
    model = train_examples.VibrationCNN()
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    mods = [model.stem[0], model.block1[0], model.block1[3], model.block2[0], model.block2[4]]
    norms = [model.stem[1], model.block1[1], model.block1[4], model.block2[1], model.block2[5]]
    if len(convs) != len(mods):
        sys.exit(f"torch_dynamic: {onnx_path}: {len(convs)} convs, expected {len(mods)}")
    with torch.no_grad():
        for node, conv, bn in zip(convs, mods, norms):
            w, b = inits[node.input[1]], inits[node.input[2]]
            conv.weight.copy_(w)
            bn.weight.fill_(1.0)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) = 1: an identity norm
            if conv.bias is not None:
                conv.bias.copy_(b)
                bn.bias.zero_()
            else:
                bn.bias.copy_(b)
        model.fc.weight.copy_(inits["fc.weight"])
        model.fc.bias.copy_(inits["fc.bias"])
    return model.eval(), "vibration", [3, 256]


def percentile(sorted_ms, p):
    i = int(p / 100.0 * (len(sorted_ms) - 1) + 0.5)
    return sorted_ms[min(i, len(sorted_ms) - 1)]


def time_batch(model, x, warmup, repeats):
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            ms.append((time.perf_counter() - t0) * 1e3)
    total = sum(ms)
    ms.sort()
    return {"batch": x.shape[0],
            "latency_ms": {"p50": percentile(ms, 50), "p90": percentile(ms, 90),
                           "p99": percentile(ms, 99)},
            "throughput_per_s": x.shape[0] * repeats / (total / 1e3)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--engine", default="onednn")
    p.add_argument("--float", action="store_true", help="time the float module instead")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.engine not in torch.backends.quantized.supported_engines:
        sys.exit(f"torch_dynamic: engine {a.engine} not in this torch "
                 f"({torch.backends.quantized.supported_engines})")
    torch.backends.quantized.engine = a.engine
    model, name, dims = build(a.model)

    # The float module must reproduce the ONNX file's committed logits, or the rebuild is wrong.
    ex = os.path.join(HERE, "..", "..", "examples", f"{name}_test")
    if os.path.exists(ex + "_x.bin") and os.path.exists(ex + "_logits.bin"):
        xs = torch.from_numpy(np.fromfile(ex + "_x.bin", "<f4").reshape(-1, *dims))
        ref = np.fromfile(ex + "_logits.bin", "<f4").reshape(len(xs), -1)
        with torch.inference_mode():
            got = model(xs).numpy()
        err = float(np.abs(got - ref).max())
        if err > 1e-3 * max(1.0, float(np.abs(ref).max())):
            sys.exit(f"torch_dynamic: rebuilt {name} is off the committed logits by {err}")
        print(f"torch_dynamic: float {name} matches the committed logits (max err {err:.2e})",
              file=sys.stderr)

    if not a.float:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                       dtype=torch.qint8)
    x = torch.from_numpy(np.fromfile(a.data, "<f4").reshape(-1, *dims))
    y = np.fromfile(a.labels, np.uint8)
    if len(y) != len(x):
        sys.exit(f"torch_dynamic: {len(x)} samples, {len(y)} labels")
    correct = 0
    with torch.inference_mode():
        for s in range(0, len(x), 256):
            correct += int((model(x[s:s + 256]).argmax(1).numpy() == y[s:s + 256]).sum())

    # Timed on the first test samples, as edgeinfer and ORT are (bench --data).
    results = [time_batch(model, x[:b].clone(), a.warmup, a.repeats) for b in (1, 16)]
    print(json.dumps({
        "model": name, "threads": a.threads, "runtime": "torch", "torch_version": torch.__version__,
        "engine": a.engine, "quantized": not a.float, "results": results,
        "accuracy": correct / len(x), "samples": len(x), "private_bytes": anonymous_bytes(),
    }))


if __name__ == "__main__":
    main()
