#!/usr/bin/python3
"""Quantize an ONNX model the ONNX way, for ONNX Runtime's side of scripts/bench_quant.sh.

usage: ort_quantize.py IN.onnx OUT.onnx [--per-tensor]

Each Gemm (and MatMul with a constant weight) becomes, as onnxruntime's quantize_dynamic writes
it (QInt8 weights, QUInt8 activations):

    x -> DynamicQuantizeLinear -> x_q (uint8), x_scale, x_zero_point
    MatMulInteger(x_q, W_q, x_zero_point, W_zero_point = 0) -> int32
    Cast(float) -> Mul(x_scale * W_scale) -> Add(bias)

which ONNX Runtime fuses into its DynamicQuantizeMatMul / MatMulIntegerToFloat kernels. Weights
are symmetric int8 ([-127, 127], zero point 0), one scale per output column by default (as
edgeinfer's int8, and quantize_dynamic(per_channel=True)); --per-tensor uses one scale for the
whole weight (quantize_dynamic's default). A BatchNormalization that directly follows a Gemm is
folded into it first, as edgeinfer's converter does, so both engines quantize the same weights.
Convs stay float, as in edgeinfer's int8 plan. Built with python3-onnx and numpy only.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def consumers(graph, name):
    return [n for n in graph.node if name in n.input]


def attr(node, key, default):
    for a in node.attribute:
        if a.name == key:
            return helper.get_attribute_value(a)
    return default


def fold_batchnorms(graph, inits):
    """Gemm -> BatchNormalization (the Gemm's only reader) becomes one Gemm."""
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        prod = [n for n in graph.node if bn.input[0] in n.output]
        if len(prod) != 1 or prod[0].op_type != "Gemm" or len(consumers(graph, bn.input[0])) != 1:
            continue
        gemm = prod[0]
        if attr(gemm, "transB", 0) != 1 or len(gemm.input) < 3 or gemm.input[1] not in inits:
            continue
        scale, b, mean, var = (inits[i] for i in bn.input[1:5])
        eps = attr(bn, "epsilon", 1e-5)
        k = scale / np.sqrt(var + eps)
        inits[gemm.input[1]] = (inits[gemm.input[1]] * k[:, None]).astype(np.float32)
        inits[gemm.input[2]] = ((inits[gemm.input[2]] - mean) * k + b).astype(np.float32)
        gemm.output[0] = bn.output[0]
        graph.node.remove(bn)


def quantize_weight(w_kn, per_tensor):
    """w [K, N] float -> int8 [K, N] and scales [N] (or [1]), symmetric."""
    amax = np.abs(w_kn).max() if per_tensor else np.abs(w_kn).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w_kn / scale), -127, 127).astype(np.int8)
    return q, np.atleast_1d(scale).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--per-tensor", action="store_true")
    a = p.parse_args()
    m = onnx.load(a.model)
    g = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    fold_batchnorms(g, inits)

    new_nodes, count = [], 0
    for n in g.node:
        w_name = n.input[1] if len(n.input) > 1 else None
        if n.op_type not in ("Gemm", "MatMul") or w_name not in inits:
            new_nodes.append(n)
            continue
        if n.op_type == "Gemm" and (attr(n, "transA", 0) or attr(n, "alpha", 1.0) != 1.0
                                    or attr(n, "beta", 1.0) != 1.0):
            new_nodes.append(n)
            continue
        w = inits[w_name]
        w_kn = w.T if n.op_type == "Gemm" and attr(n, "transB", 0) else w
        q, scale = quantize_weight(w_kn.astype(np.float32), a.per_tensor)
        t = f"q{count}"
        count += 1
        inits[t + "_w"] = q
        inits[t + "_wzp"] = np.zeros(1 if a.per_tensor else q.shape[1], np.int8)
        inits[t + "_ws"] = scale
        x = n.input[0]
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [t + "_x", t + "_xs", t + "_xzp"],
                             name=t + "_dql"),
            helper.make_node("MatMulInteger", [t + "_x", t + "_w", t + "_xzp", t + "_wzp"],
                             [t + "_i32"], name=t + "_mmi"),
            helper.make_node("Cast", [t + "_i32"], [t + "_f"], to=TensorProto.FLOAT,
                             name=t + "_cast"),
            helper.make_node("Mul", [t + "_xs", t + "_ws"], [t + "_s"], name=t + "_scale"),
        ]
        has_bias = n.op_type == "Gemm" and len(n.input) > 2 and n.input[2]
        scaled = t + "_y" if has_bias else n.output[0]
        new_nodes.append(helper.make_node("Mul", [t + "_f", t + "_s"], [scaled], name=t + "_mul"))
        if has_bias:
            new_nodes.append(helper.make_node("Add", [scaled, n.input[2]], [n.output[0]],
                                              name=t + "_bias"))
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in g.node for i in n.input}
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items() if k in used)
    onnx.checker.check_model(m)
    onnx.save(m, a.out)
    print(f"ort_quantize: {count} layers int8 ({'per-tensor' if a.per_tensor else 'per-channel'}"
          f" weights) -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
