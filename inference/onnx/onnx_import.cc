#include "inference/onnx/onnx_import.h"

namespace edgeinfer {

Result<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions&) {
  return Status::Unsupported("ONNX import not built yet: " + path);
}

Result<Graph> ImportOnnxBytes(const std::string&, const OnnxImportOptions&) {
  return Status::Unsupported("ONNX import not built yet");
}

}  // namespace edgeinfer
