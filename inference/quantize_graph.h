// The converter's quantization pass: Graph -> Graph with the weights of Gemm and Conv layers
// stored at the requested precision, in the layout the quantized kernels read (so the .eim file
// holds them as they run: no repacking at load). Used by `edgeinfer convert --precision`.
//
// Which layers change, and to what (each decision is one LayerPlan with a note):
//   - a Gemm with a constant float32 B and transA = 0 (B is transposed to [N, K] when transB = 0
//     and alpha is folded into it), and a Conv with a constant float32 W that is not depthwise;
//   - layers with fewer than QuantizeOptions::min_weights weights (N * K) stay fp32: they cost
//     little memory or time, and short rows quantize worst (a vibration stem of 3 x 7 taps);
//   - layers with K above quant::kMaxQuantK stay fp32 (the int32 dot products must stay exact);
//   - depthwise convs stay fp32 (a direct kernel; K = kh * kw is too short to gain);
//   - a grouped conv whose M/group is not a multiple of 8 runs int8 in an int4 plan;
//   - the logits layers (a Gemm/Conv whose output reaches a graph output through no other
//     Gemm/Conv) take QuantizeOptions::logits_int4 in an int4 plan: int8 by default;
//   - Conv layers take QuantizeOptions::conv_int8 in an int8 plan (int8 by default) unless their
//     K (C/group * kh * kw) is below min_int8_conv_k (64): those stay fp32. Int8 and int4 conv
//     weights are stored OHWI ([M, k..., C/group], the order of the int8 im2row) and the Conv
//     node says so with weight_layout = "ohwi" (files from before keep OIHW and still run);
//   - int8-static plans (QuantizeOptions::thresholds from inference/calibration.h): Gemm and Conv
//     become QGemm / QConv (docs/ops.md) with int8 weights and calibrated activation scales; a
//     Gemm whose C is not a constant [N] / [1, N] bias row added with beta 1 runs dynamic int8;
//     Conv layers take QuantizeOptions::conv_int8_static (static by default) unless their K
//     (C/group * kh * kw) is below min_static_conv_k (64), which stay fp32. A static layer's output
//     stays int8 when every reader, through MaxPools and Reshapes (which become QMaxPool and
//     QReshape), is the X of another
//     static layer and no tensor on the way is a graph output; its scale is the calibrated scale
//     of that output. Otherwise the output is float32 and the next static layer quantizes it
//     with the calibrated scale of its own input;
//   - QuantizeOptions::keep overrides everything above for the layers it names (node names); a
//     named layer that cannot run at the asked precision is an error.
//     `--precision auto` (inference/precision_search.h) measures each layer's sensitivity and
//     passes its per-layer answer as keep, over an fp32 plan.
//
// Why these defaults (measured on the example models, full test sets, AVX2 Zen3, one thread):
//   - logits int8 in int4 plans: fashion_mlp's fc3 (768 -> 10) at int4 gives 90.08% and 99.43%
//     top-1 agreement with fp32; at int8 90.13% and 99.65%, for 848 more bytes (N = 10 rows pad
//     to 16 in int4's 8-row groups, so int4 saves almost nothing there). llama.cpp and most
//     toolkits keep the output layer at higher precision for the same reason.
//   - min_weights 1024: quantizing the vibration CNN's stem (3 x 7 taps x 32) and fc (64 x 4) too
//     drops its int4 accuracy from 95.97% to 95.85% (agreement 99.24% -> 98.80%) for 2.6 KB.
//   - convs int8 in int8 plans, K >= 64: the dynamic int8 Conv (inference/ops/conv.cc)
//     quantizes each sample's input once (one scale per sample and group) straight into HWC and
//     builds the GEMM rows with an int8 im2row, so only the integer GEMM is left against
//     sgemm. The vibration CNN (edgeinfer bench p50, 5 alternating rounds, one thread):
//     batch 1 int8 0.056 ms vs fp32 0.078, batch 16 0.892 vs 1.262 ms. Per layer (profile
//     medians, batch 1): block2.0 (K = 320) 22.5 us int8 vs 37.8 fp32, block2.4 (K = 192) 8.8 vs
//     14.4, but block1.3 (1x1 over 32 channels, K = 32) 16.1 vs 11.0: at K = 32 the GEMM's
//     per-output overhead and the quantize/transposes outweigh the narrower MACs, hence
//     min_int8_conv_k = 64 (with block1.3 int8 too the model ran 0.061 ms). The old kernel
//     (float im2col transposed, every row quantized on its own) ran 0.096 ms. Accuracy (full
//     vibration test set, 4096): int8 96.14%, fp32 96.07%, top-1 agreement 99.93%.
//   - int4 plans quantize every eligible conv, K = 32 included: int4 is chosen for size, and
//     the model runs at fp32 speed (batch 1 0.078 ms, batch 16 1.259 vs 1.262) in 33.7 KB
//     against 153 KB; keeping block1.3 fp32 gave 0.069 ms in 40.6 KB. Accuracy 95.92%
//     (agreement 99.22%).
//   - convs static in int8-static plans: no per-run max scan, int8 im2row straight from int8
//     tensors (a quarter of the bytes) and a weight order that makes it a copy per window row.
//     The vibration CNN, batch 1, one thread (edgeinfer bench p50, the same run, a busy
//     machine): fp32 0.079 ms; all three convs static 0.087 ms; with block1.3 (1x1 over 32
//     channels, K = 32) fp32 0.072 ms. Per layer (profile medians): block2.0 (K = 320) 32 us
//     static vs 38 fp32, block2.4 (K = 192) 12 vs 14, block1.3 26 vs 11: at K = 32 the GEMM is
//     too short to pay for quantizing and transposing its input and output, hence
//     min_static_conv_k = 64. Accuracy (full test sets, percentile): fashion_mlp 90.10% (fp32
//     90.15%), vibration 96.14% (fp32 96.07%).
// Every Gemm and Conv gets a `precision` attribute ("fp32", "fp16", "int8", "int4") naming the
// precision its weight is stored at, which the op validates against the weight's dtype.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

enum class Precision : uint8_t { kFp32 = 0, kFp16 = 1, kInt8 = 2, kInt4 = 3, kInt8Static = 4 };

const char* PrecisionName(Precision p);  // "fp32", "fp16", "int8", "int4", "int8-static"
// False (and *out untouched) for an unknown name.
bool ParsePrecision(std::string_view name, Precision* out);

struct QuantizeOptions {
  Precision precision = Precision::kFp32;
  // Node name -> the precision that layer takes whatever the rules say (--keep NODE=fp16|fp32).
  std::map<std::string, Precision> keep;
  // Layers with fewer weights (N * K) stay fp32.
  int64_t min_weights = 1024;
  // The logits layers' precision in an int4 plan.
  Precision logits_int4 = Precision::kInt8;
  // Conv layers' precision in an int8 plan.
  Precision conv_int8 = Precision::kInt8;
  // In an int8 plan, Conv layers with a shorter K (C/group * kh * kw) stay fp32.
  int64_t min_int8_conv_k = 64;
  // Conv layers' precision in an int8-static plan.
  Precision conv_int8_static = Precision::kInt8Static;
  // In an int8-static plan, Conv layers with a shorter K (C/group * kh * kw) stay fp32.
  int64_t min_static_conv_k = 64;
  // int8-static: the calibrated threshold T (scale T / 127) of every tensor CalibrationTensors
  // names, by tensor name (inference/calibration.h). Required for an int8-static plan.
  const std::map<std::string, float>* thresholds = nullptr;
  // FP32 fully connected layers go to the Dense op on weights packed in its kernel's panel
  // layout (inference/pack_weights.h): the packing is done once here, never per call.
  bool pack_fp32_dense = true;
};

struct LayerPlan {
  std::string node;
  std::string op;
  Precision precision = Precision::kFp32;  // what the weight is stored at
  std::string weight_dtype;                // its dtype name, e.g. "qint8_channel"
  uint64_t bytes_before = 0;               // weight bytes (float32) before and after
  uint64_t bytes_after = 0;
  std::string note;  // why it differs from the requested precision; empty when it does not
  // int8-static layers: the input's scale, and the output's when it stays int8 (else 0: float).
  float x_scale = 0.f;
  float y_scale = 0.f;
  bool int8_input = false;  // the input is the int8 output of another static layer
};

// The float tensors an int8-static plan of `g` needs thresholds for: the input and the output of
// every Gemm and Conv.
std::vector<std::string> CalibrationTensors(const Graph& g);

// Returns the quantized graph (constant data owned by it or shared with `g`'s storage, which it
// keeps alive) and, in *plan, one entry per Gemm/Conv in node order. `g` must be valid
// (ValidateGraph); the result is validated before it is returned. Errors: InvalidArgument for a
// --keep entry that names no Gemm/Conv or asks what the layer cannot run.
Result<Graph> QuantizeGraph(const Graph& g, const QuantizeOptions& options,
                            std::vector<LayerPlan>* plan);

}  // namespace edgeinfer
