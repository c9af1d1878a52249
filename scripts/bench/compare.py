#!/usr/bin/python3
"""Builds the table of scripts/bench_engine.sh from the JSON files its runs left in --dir.

usage: compare.py --dir build/bench --rounds K --threads N --repeats R [--openblas-env NOTE]
                  [--json] STEM...

For each STEM it reads STEM.edgeinfer.{1..K}.json (`edgeinfer bench --json`),
STEM.ort.{1..K}.json (scripts/bench/ort_bench.js, same schema) and STEM.inspect.json
(`edgeinfer inspect --json`). Each figure is the median over the K rounds of its own side,
taken figure by figure: one slow round (a noisy neighbour on the VM) then moves no median.

Ratios are oriented so that > 1 means edgeinfer is better: ORT/edgeinfer for latency,
edgeinfer/ORT for throughput.

Standard library only: it runs with the system's /usr/bin/python3 and nothing installed.
"""
import argparse
import json
import os
import statistics
import sys

MIB = 1024 * 1024
KIB = 1024


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare: cannot read {path}: {e}")


def result_for(run, batch, path):
    for r in run["results"]:
        if r["batch"] == batch:
            return r
    sys.exit(f"compare: {path} has no result for batch {batch}")


def side_figures(paths, big_batch):
    """Per-round figures of one engine, and their medians."""
    runs = [(p, load(p)) for p in paths]
    rounds = {
        "batch1_p50_ms": [result_for(r, 1, p)["latency_ms"]["p50"] for p, r in runs],
        "batch1_p90_ms": [result_for(r, 1, p)["latency_ms"]["p90"] for p, r in runs],
        f"batch{big_batch}_throughput_per_s":
            [result_for(r, big_batch, p)["throughput_per_s"] for p, r in runs],
        f"batch{big_batch}_p50_ms":
            [result_for(r, big_batch, p)["latency_ms"]["p50"] for p, r in runs],
        "peak_rss_bytes": [r["peak_rss_bytes"] for _, r in runs],
    }
    if all("call_overhead_p50_ms" in r for _, r in runs):  # ORT only
        rounds["call_overhead_p50_ms"] = [r["call_overhead_p50_ms"] for _, r in runs]
    medians = {k: statistics.median(v) for k, v in rounds.items()}
    last = runs[-1][1]  # run-independent fields (sizes, core name) are read from any run
    return medians, rounds, last


def model_entry(d, stem, rounds, big_batch):
    ei, ei_rounds, ei_last = side_figures(
        [os.path.join(d, f"{stem}.edgeinfer.{r}.json") for r in range(1, rounds + 1)], big_batch)
    ort, ort_rounds, ort_last = side_figures(
        [os.path.join(d, f"{stem}.ort.{r}.json") for r in range(1, rounds + 1)], big_batch)
    inspect = load(os.path.join(d, f"{stem}.inspect.json"))
    arena = {a["max_batch"]: a for a in inspect.get("arena", [])}
    big = arena.get(big_batch) or (max(arena.values(), key=lambda a: a["max_batch"])
                                   if arena else None)
    tp = f"batch{big_batch}_throughput_per_s"
    private_after_load = statistics.median(
        load(os.path.join(d, f"{stem}.edgeinfer.{r}.json"))["private_bytes_after_load"]
        for r in range(1, rounds + 1))
    ort_private_after_load = statistics.median(
        load(os.path.join(d, f"{stem}.ort.{r}.json")).get("private_bytes_after_load", 0)
        for r in range(1, rounds + 1))
    ratios = {
        "batch1_latency_ort_over_edgeinfer": ort["batch1_p50_ms"] / ei["batch1_p50_ms"],
        f"batch{big_batch}_throughput_edgeinfer_over_ort": ei[tp] / ort[tp],
        "peak_rss_ort_over_edgeinfer": ort["peak_rss_bytes"] / ei["peak_rss_bytes"],
    }
    if "call_overhead_p50_ms" in ort:
        # ORT's batch-1 latency less what its Node binding costs per call: the runtime alone.
        ort["batch1_p50_net_of_binding_ms"] = ort["batch1_p50_ms"] - ort["call_overhead_p50_ms"]
        ratios["batch1_latency_ort_net_over_edgeinfer"] = (
            ort["batch1_p50_net_of_binding_ms"] / ei["batch1_p50_ms"])
    return {
        "model": stem,
        "edgeinfer": {**ei, "rounds": ei_rounds},
        "ort": {**ort, "rounds": ort_rounds},
        "ratios": ratios,
        "memory": {
            # The arena plan: one buffer for all intermediates, with lifetimes overlapped.
            "arena": [{"max_batch": a["max_batch"], "arena_bytes": a["arena_bytes"],
                       "intermediate_bytes": a["intermediate_bytes"]} for a in arena.values()],
            "arena_bytes": big["arena_bytes"] if big else ei_last.get("arena_bytes"),
            "intermediate_bytes": big["intermediate_bytes"] if big else None,
            "arena_max_batch": big["max_batch"] if big else big_batch,
            # Zero-copy loading: the weights stay in the mmap'd .eim (file-backed pages), so the
            # anonymous memory after load should stay well under the file's size.
            "edgeinfer_private_bytes_after_load": private_after_load,
            "eim_file_bytes": ei_last.get("file_bytes"),
            "weight_bytes": ei_last.get("weight_bytes"),
            "ort_private_bytes_after_load": ort_private_after_load,
            "onnx_file_bytes": ort_last.get("file_bytes"),
            # ORT's peak RSS includes the Node.js runtime; this is Node alone, before ORT loads.
            "node_rss_bytes_before_ort": ort_last.get("node_rss_bytes_before_load"),
        },
        "blas_core": ei_last.get("blas_core"),
        "ort_version": ort_last.get("ort_version"),
    }


def fmt_ratio(x):
    return f"{x:.2f}x"


def print_text(report):
    big = report["big_batch"]
    tp = f"batch{big}_throughput_per_s"
    p = print
    p(f"edgeinfer FP32 vs ONNX Runtime {report['ort_version']} (CPU EP, graph opt 'all'), "
      f"{report['threads']} thread(s)")
    p(f"{report['repeats']} timed runs per batch size, {report['rounds']} alternating rounds per "
      f"engine, median of rounds; ratios > 1 mean edgeinfer is better")
    p(f"OpenBLAS core used by edgeinfer: {report['blas_core']}")
    p(f"OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {report['openblas_env']}")
    p()
    p(f"{'':14}{'batch 1 latency p50 (ms)':^40}    {f'batch {big} throughput (inferences/s)':^32}")
    p(f"{'model':14}{'edgeinfer':>10}{'ORT':>10}{'ORT/ei':>8}{'ORT net*':>10}{'net/ei':>8}    "
      f"{'edgeinfer':>10}{'ORT':>10}{'ei/ORT':>8}")
    for m in report["models"]:
        e, o, r = m["edgeinfer"], m["ort"], m["ratios"]
        net = o.get("batch1_p50_net_of_binding_ms")
        net_ratio = r.get("batch1_latency_ort_net_over_edgeinfer")
        p(f"{m['model']:14}{e['batch1_p50_ms']:>10.4f}{o['batch1_p50_ms']:>10.4f}"
          f"{fmt_ratio(r['batch1_latency_ort_over_edgeinfer']):>8}"
          f"{(f'{net:.4f}' if net is not None else '-'):>10}"
          f"{(fmt_ratio(net_ratio) if net_ratio is not None else '-'):>8}    "
          f"{e[tp]:>10.0f}{o[tp]:>10.0f}{fmt_ratio(r[f'batch{big}_throughput_edgeinfer_over_ort']):>8}")
    ovh = [m["ort"]["call_overhead_p50_ms"] for m in report["models"]
           if "call_overhead_p50_ms" in m["ort"]]
    if ovh:
        p(f"* ORT net: less the p50 cost of a call through the Node binding (an Identity model of "
          f"the same input: {', '.join(f'{x:.4f}' for x in ovh)} ms),")
        p("  i.e. what ONNX Runtime would take called from C/C++; the plain ratio is what a Node "
          "user sees.")
    p()
    p(f"{'':14}{'peak RSS (MiB)':^30}  {f'arena, max batch {big} (KiB)':^30}  "
      f"{'edgeinfer after load (KiB)':^36}")
    p(f"{'model':14}{'edgeinfer':>10}{'ORT':>10}{'ORT/ei':>10}  {'planned':>10}{'interm.':>10}"
      f"{'saved':>10}  {'private':>12}{'.eim file':>12}{'weights':>12}")
    for m in report["models"]:
        e, o, mem = m["edgeinfer"], m["ort"], m["memory"]
        arena, inter = mem["arena_bytes"], mem["intermediate_bytes"]
        saved = f"{100 * (1 - arena / inter):.0f}%" if arena is not None and inter else "-"
        kib = lambda x: f"{x / KIB:.1f}" if x is not None else "-"
        p(f"{m['model']:14}{e['peak_rss_bytes'] / MIB:>10.1f}{o['peak_rss_bytes'] / MIB:>10.1f}"
          f"{fmt_ratio(m['ratios']['peak_rss_ort_over_edgeinfer']):>10}  "
          f"{kib(arena):>10}{kib(inter):>10}{saved:>10}  "
          f"{kib(mem['edgeinfer_private_bytes_after_load']):>12}{kib(mem['eim_file_bytes']):>12}"
          f"{kib(mem['weight_bytes']):>12}")
    node = [m["memory"]["node_rss_bytes_before_ort"] for m in report["models"]
            if m["memory"]["node_rss_bytes_before_ort"]]
    p()
    if node:
        p(f"ORT's RSS includes the Node.js runtime: {statistics.median(node) / MIB:.1f} MiB "
          f"before onnxruntime-node is loaded.")
    p("'private' is anonymous memory (/proc/self/smaps_rollup) after the model is loaded: the "
      "weights stay file-backed in the mmap'd .eim, so it does not grow with the weights.")
    p(f"raw per-round files and the converted models: {report['dir']}/")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeats", type=int, required=True)
    ap.add_argument("--big-batch", type=int, default=16)
    ap.add_argument("--openblas-env", default="not reported")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("stems", nargs="+")
    a = ap.parse_args()

    models = [model_entry(a.dir, s, a.rounds, a.big_batch) for s in a.stems]
    report = {
        "threads": a.threads,
        "repeats": a.repeats,
        "rounds": a.rounds,
        "big_batch": a.big_batch,
        "blas_core": models[0]["blas_core"],
        "ort_version": models[0]["ort_version"],
        "openblas_env": a.openblas_env,
        "dir": a.dir,
        "models": models,
    }
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        print_text(report)


if __name__ == "__main__":
    main()
