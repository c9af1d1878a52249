#!/usr/bin/python3
"""Builds the table of scripts/bench_quant.sh from the files its runs left in --dir.

usage: quant_table.py --dir DIR --rounds K --threads N --repeats R [--json] STEM...

For each STEM (an example model) and each configuration CFG it reads:
  STEM.CFG.eval.json     accuracy on the full test set ({"accuracy", "samples"})
  STEM.CFG.R.json        bench runs, R = 1..K, in the schema of `edgeinfer bench --json`
  STEM.CFG.file          the model file's size in bytes (one number)
  STEM.CFG.na            present when the build cannot make this configuration: its reason
CFG is fp32 fp16 int8 int8-static int4 auto (edgeinfer), ort-fp32 ort-int8 (ONNX Runtime) and
torch-int8 (PyTorch dynamic int8, accuracy inside its bench JSON). Each figure is the median over
the K rounds of its own configuration. The issue's targets (issue 3, Figures) are checked at the
end: one line each, "met" or "NOT met", with the figures behind it.

Standard library only.
"""
import argparse
import json
import os
import statistics
import sys

EDGEINFER = ["fp32", "fp16", "int8", "int8-static", "int4", "auto"]
OTHERS = ["ort-fp32", "ort-int8", "torch-int8"]
LABEL = {"ort-fp32": "ORT fp32", "ort-int8": "ORT int8 (dyn)", "torch-int8": "torch int8 (dyn)"}
MLP = "fashion_mlp"  # the ~3M-parameter MLP the speed targets are about


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def result(run, batch):
    for r in run.get("results", []):
        if r["batch"] == batch:
            return r
    return None


def figures(d, stem, cfg, rounds):
    base = os.path.join(d, f"{stem}.{cfg}")
    row = {"config": cfg, "engine": "edgeinfer" if cfg in EDGEINFER else cfg.split("-")[0]}
    if os.path.exists(base + ".na"):
        with open(base + ".na") as f:
            row["na"] = f.read().strip() or "not supported by this build"
        return row
    runs = [r for r in (load(f"{base}.{i}.json") for i in range(1, rounds + 1)) if r]
    if not runs:
        row["na"] = "no runs (failed: see the log above)"
        return row
    med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    b1 = [result(r, 1) for r in runs]
    b16 = [result(r, 16) for r in runs]
    row["b1_p50_ms"] = med([r["latency_ms"]["p50"] for r in b1 if r])
    row["b16_per_s"] = med([r["throughput_per_s"] for r in b16 if r])
    row["b16_p50_ms"] = med([r["latency_ms"]["p50"] for r in b16 if r])
    row["private_bytes"] = med([r["private_bytes"] for r in runs if "private_bytes" in r])
    ev = load(base + ".eval.json")
    if ev is None and "accuracy" in runs[-1]:
        ev = runs[-1]
    if ev:
        row["accuracy"] = ev["accuracy"]
        row["samples"] = ev["samples"]
    if os.path.exists(base + ".file"):
        with open(base + ".file") as f:
            row["file_bytes"] = int(f.read().strip())
    return row


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def table(models):
    lines = []
    head = (f"{'model':<12} {'config':<17} {'accuracy %':>10} {'drop':>6} {'file KiB':>9} "
            f"{'% fp32':>7} {'b1 p50 ms':>9} {'b16 p50 ms':>10} {'b16 inf/s':>9} {'x fp32':>6} "
            f"{'priv MiB':>8}")
    lines += [head, "-" * len(head)]
    for stem, rows in models.items():
        fp32 = next((r for r in rows if r["config"] == "fp32" and "na" not in r), {})
        ort_fp32 = next((r for r in rows if r["config"] == "ort-fp32" and "na" not in r), {})
        for r in rows:
            name = LABEL.get(r["config"], r["config"])
            if "na" in r:
                lines.append(f"{stem:<12} {name:<17} n/a ({r['na']})")
                continue
            acc = r.get("accuracy")
            drop = (fp32["accuracy"] - acc) * 100 if acc is not None and "accuracy" in fp32 else None
            size = r.get("file_bytes")
            # ORT's files against ORT's own fp32 .onnx, edgeinfer's against its fp32 .eim.
            base = ort_fp32 if r["config"].startswith("ort-") else fp32
            pct = 100.0 * size / base["file_bytes"] if size and base.get("file_bytes") else None
            speed = (r["b16_per_s"] / fp32["b16_per_s"]
                     if r.get("b16_per_s") and fp32.get("b16_per_s") else None)
            priv = r.get("private_bytes")
            lines.append(
                f"{stem:<12} {name:<17} {fmt(acc and acc * 100, '10.2f'):>10} "
                f"{fmt(drop, '+6.2f'):>6} {fmt(size and size / 1024, '9.1f'):>9} "
                f"{fmt(pct, '6.1f'):>7} {fmt(r.get('b1_p50_ms'), '9.3f'):>9} "
                f"{fmt(r.get('b16_p50_ms'), '10.3f'):>10} "
                f"{fmt(r.get('b16_per_s'), '9.0f'):>9} {fmt(speed, '6.2f'):>6} "
                f"{fmt(priv and priv / 2**20, '8.1f'):>8}")
        lines.append("")
    return lines


def targets(models):
    """(description, met, figures) for each target of issue 3 the data allows checking."""
    out = []

    def get(stem, cfg):
        return next((r for r in models.get(stem, []) if r["config"] == cfg and "na" not in r), None)

    for stem in models:
        fp32 = get(stem, "fp32")
        if not fp32:
            continue
        for cfg, limit in (("int8", 0.5), ("int8-static", 0.5), ("int4", 1.5)):
            r = get(stem, cfg)
            if r and "accuracy" in r and "accuracy" in fp32:
                drop = (fp32["accuracy"] - r["accuracy"]) * 100
                out.append((f"{stem}: {cfg} accuracy drop <= {limit} points", drop <= limit,
                            f"{drop:+.2f} points ({r['accuracy'] * 100:.2f}% vs "
                            f"{fp32['accuracy'] * 100:.2f}%)"))
        for cfg, limit in (("int8", 26.0), ("int4", 15.0)):
            r = get(stem, cfg)
            if r and r.get("file_bytes") and fp32.get("file_bytes"):
                pct = 100.0 * r["file_bytes"] / fp32["file_bytes"]
                out.append((f"{stem}: {cfg} file <= {limit:.0f}% of fp32", pct <= limit,
                            f"{pct:.1f}%"))
        r = get(stem, "int8")
        if r:
            ok = r["b1_p50_ms"] <= fp32["b1_p50_ms"] and r["b16_per_s"] >= fp32["b16_per_s"]
            same = r.get("file_bytes") and abs(r["file_bytes"] - fp32.get("file_bytes", 0)) < \
                0.01 * r["file_bytes"]
            out.append((f"{stem}: int8 never slower than fp32 (b1 and b16)", ok,
                        f"b1 {r['b1_p50_ms']:.3f} vs {fp32['b1_p50_ms']:.3f} ms, b16 "
                        f"{r['b16_per_s']:.0f} vs {fp32['b16_per_s']:.0f}/s" +
                        (" (the int8 plan keeps every layer fp32: the same model, so only noise "
                         "differs)" if same else "")))
    fp32, i8, i4, ort = (get(MLP, c) for c in ("fp32", "int8", "int4", "ort-int8"))
    if fp32 and i8:
        x = fp32["b1_p50_ms"] / i8["b1_p50_ms"]
        out.append((f"{MLP}: int8 batch-1 latency >= 2x faster than fp32", x >= 2.0, f"{x:.2f}x"))
        x = i8["b16_per_s"] / fp32["b16_per_s"]
        out.append((f"{MLP}: int8 batch-16 throughput >= 1.5x fp32", x >= 1.5,
                    f"{x:.2f}x (by batch-16 p50 latency: "
                    f"{fp32['b16_p50_ms'] / i8['b16_p50_ms']:.2f}x)"))
    if fp32 and i4:
        x = fp32["b1_p50_ms"] / i4["b1_p50_ms"]
        out.append((f"{MLP}: int4 batch-1 latency >= 2.3x faster than fp32", x >= 2.3, f"{x:.2f}x"))
    if i8 and ort:
        out.append((f"{MLP}: int8 batch-1 latency <= ORT int8", i8["b1_p50_ms"] <= ort["b1_p50_ms"],
                    f"{i8['b1_p50_ms']:.3f} vs {ort['b1_p50_ms']:.3f} ms"))
        out.append((f"{MLP}: int8 batch-16 throughput >= ORT int8",
                    i8["b16_per_s"] >= ort["b16_per_s"],
                    f"{i8['b16_per_s']:.0f} vs {ort['b16_per_s']:.0f}/s (p50 "
                    f"{i8['b16_p50_ms']:.3f} vs {ort['b16_p50_ms']:.3f} ms)"))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("stems", nargs="+")
    a = p.parse_args()
    models = {s: [figures(a.dir, s, c, a.rounds) for c in EDGEINFER + OTHERS] for s in a.stems}
    checks = targets(models)
    info = {}
    for s in a.stems:
        for cfg in ("ort-int8", "torch-int8"):
            run = load(os.path.join(a.dir, f"{s}.{cfg}.1.json"))
            if run:
                info[cfg] = run.get("ort_version") or f"torch {run.get('torch_version')} " \
                    f"engine {run.get('engine')}"
    if a.json:
        print(json.dumps({"threads": a.threads, "rounds": a.rounds, "repeats": a.repeats,
                          "models": models, "runtimes": info,
                          "targets": [{"target": t, "met": m, "figures": f}
                                      for t, m, f in checks]}, indent=1))
        return
    print(f"Quantized inference, {a.threads} thread(s), median of {a.rounds} rounds of "
          f"{a.repeats} runs per batch size; accuracy on the full test sets.")
    print("throughput = batch * runs / timed seconds (a mean: the p50 beside it is steadier on a "
          "busy machine); drop: points below edgeinfer fp32; % fp32: file size against the same engine's fp32 "
          "file; x fp32: batch-16 throughput over edgeinfer fp32's; "
          "priv MiB: private (anonymous) memory of the whole process (node / python for "
          "ORT / torch).")
    print("ORT int8: each Gemm as DynamicQuantizeLinear + MatMulInteger + Mul (+ Add), per-channel "
          "int8 weights (scripts/bench/ort_quantize.py)" +
          (f", onnxruntime-node {info['ort-int8']}" if "ort-int8" in info else "") +
          "; torch int8: quantize_dynamic on the Linear layers" +
          (f" ({info['torch-int8']})" if "torch-int8" in info else "") + ".\n")
    print("\n".join(table(models)))
    print("Targets (issue 3):")
    for t, m, f in checks:
        print(f"  {'met    ' if m else 'NOT met'}  {t}: {f}")


if __name__ == "__main__":
    sys.exit(main())
