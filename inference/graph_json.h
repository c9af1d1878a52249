// The JSON graph section of a .eim file: Graph <-> nlohmann::json.
//
// Schema (unknown keys are ignored, so later writers may add fields):
//   {"info": {"name", "version", "producer", "source_hash": string, "labels": [string],
//             "preprocessing": {"norm_mean": [float], "norm_std": [float], "norm_axis": int}},
//    "tensors": [{"name": string, "dtype": "float32"|..., "dims": [int],
//                 "data": {"offset": uint, "size": uint, "crc32c": uint}}],  // data: constants
//    "nodes": [{"name", "op": string, "inputs": [int], "outputs": [int],
//               "attrs": {"<name>": {"type": "int"|"float"|"string"|"ints"|"floats",
//                                    "value": ...}}}],
//    "inputs": [int], "outputs": [int]}
// Dims are symbolic (negative -k is k x batch); tensor indices refer to "tensors" (-1 in a node's
// inputs is an absent optional input). Non-finite floats are the strings "inf", "-inf", "nan".
// Blob offsets are relative to the blobs section (inference/eim_format.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

// Where a constant tensor's bytes are, relative to the blobs section.
struct BlobRef {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t crc32c = 0;
};

// `blobs` has one entry per tensor; entries of non-constant tensors are ignored.
nlohmann::json GraphToJson(const Graph& g, const std::vector<BlobRef>& blobs);

// Fills `g` (tensors, nodes, inputs, outputs, info) from `j` and sets (*blobs)[i] for each
// tensor i that has a "data" entry; those tensors are left with data == nullptr for the caller
// to point at their bytes. Checks field types, tensor indices, dtypes and dims (CheckDims), not
// op semantics. Returns Corruption/Unsupported naming the field or tensor.
Status GraphFromJson(const nlohmann::json& j, Graph* g, std::vector<std::optional<BlobRef>>* blobs);

// Rank <= kMaxRank, every |dim| <= 2^31 and the element count (batch 1) at most 2^62.
Status CheckDims(const Dims& dims);
// Bytes of a dense constant of `dtype` and `dims` (no batch dims); refuses overflow.
Result<uint64_t> ConstantBytes(DType dtype, const Dims& dims);

}  // namespace edgeinfer
