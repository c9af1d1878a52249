// Building small ONNX models in C++ for the importer tests, and running imported graphs
// through the op table (a tiny sequential interpreter, independent of Session).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "inference/graph.h"
#include "inference/onnx/onnx_import.h"
#include "inference/op.h"
#include "onnx/onnx_pb.h"

namespace edgeinfer::testing {

// Adds attributes to a node being built: b.Node("Conv", {"x", "w"}, {"y"}).Ints("pads", {..}).
class NodeRef {
 public:
  explicit NodeRef(onnx::NodeProto* n) : n_(n) {}
  NodeRef& Int(const std::string& name, int64_t v) {
    auto* a = Add(name, onnx::AttributeProto::INT);
    a->set_i(v);
    return *this;
  }
  NodeRef& Float(const std::string& name, float v) {
    auto* a = Add(name, onnx::AttributeProto::FLOAT);
    a->set_f(v);
    return *this;
  }
  NodeRef& Str(const std::string& name, const std::string& v) {
    auto* a = Add(name, onnx::AttributeProto::STRING);
    a->set_s(v);
    return *this;
  }
  NodeRef& Ints(const std::string& name, const std::vector<int64_t>& v) {
    auto* a = Add(name, onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
    return *this;
  }
  NodeRef& Floats(const std::string& name, const std::vector<float>& v) {
    auto* a = Add(name, onnx::AttributeProto::FLOATS);
    for (float x : v) a->add_floats(x);
    return *this;
  }
  NodeRef& Tensor(const std::string& name, const onnx::TensorProto& t) {
    *Add(name, onnx::AttributeProto::TENSOR)->mutable_t() = t;
    return *this;
  }
  onnx::NodeProto* proto() { return n_; }

 private:
  onnx::AttributeProto* Add(const std::string& name, onnx::AttributeProto::AttributeType type) {
    auto* a = n_->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
  }
  onnx::NodeProto* n_;
};

inline onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<float>& v, bool raw = true) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  if (raw) {
    t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  } else {
    for (float x : v) t.add_float_data(x);
  }
  return t;
}

inline onnx::TensorProto IntTensor(const std::string& name, const std::vector<int64_t>& dims,
                                   const std::vector<int64_t>& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t.add_dims(d);
  for (int64_t x : v) t.add_int64_data(x);
  return t;
}

// A ModelProto under construction. Input dims: -1 is a dynamic dim named "batch".
class OnnxBuilder {
 public:
  explicit OnnxBuilder(int opset = 13) {
    m_.set_ir_version(opset >= 15 ? 8 : 7);
    m_.set_producer_name("edgeinfer-test");
    m_.set_producer_version("1");
    auto* o = m_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    m_.mutable_graph()->set_name("test_graph");
  }

  OnnxBuilder& Input(const std::string& name, const std::vector<int64_t>& dims,
                     int type = onnx::TensorProto::FLOAT) {
    SetType(m_.mutable_graph()->add_input(), name, dims, type);
    return *this;
  }
  // Dims as for inputs; kUnknownDim is a dim with neither value nor name.
  OnnxBuilder& Output(const std::string& name, const std::vector<int64_t>& dims,
                      int type = onnx::TensorProto::FLOAT) {
    SetType(m_.mutable_graph()->add_output(), name, dims, type);
    return *this;
  }
  static constexpr int64_t kUnknownDim = -1000;
  OnnxBuilder& Init(const std::string& name, const std::vector<int64_t>& dims,
                    const std::vector<float>& v) {
    *m_.mutable_graph()->add_initializer() = FloatTensor(name, dims, v);
    return *this;
  }
  OnnxBuilder& IntInit(const std::string& name, const std::vector<int64_t>& v) {
    *m_.mutable_graph()->add_initializer() = IntTensor(name, {static_cast<int64_t>(v.size())}, v);
    return *this;
  }
  NodeRef Node(const std::string& op, const std::vector<std::string>& in,
               const std::vector<std::string>& out, const std::string& name = "") {
    auto* n = m_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + "_" + std::to_string(m_.graph().node_size()) : name);
    for (const auto& s : in) n->add_input(s);
    for (const auto& s : out) n->add_output(s);
    return NodeRef(n);
  }
  OnnxBuilder& Meta(const std::string& key, const std::string& value) {
    auto* p = m_.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
    return *this;
  }
  onnx::ModelProto& model() { return m_; }
  std::string Bytes() const { return m_.SerializeAsString(); }
  Result<Graph> Import(bool optimize = true) const {
    OnnxImportOptions o;
    o.optimize = optimize;
    return ImportOnnxBytes(Bytes(), o);
  }

 private:
  static void SetType(onnx::ValueInfoProto* v, const std::string& name,
                      const std::vector<int64_t>& dims, int type) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    auto* shape = t->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d == kUnknownDim) continue;
      if (d < 0) {
        std::string param = "n";  // (appended: GCC 12 warns falsely on "n" + std::string)
        param += std::to_string(-d);
        dim->set_dim_param(d == -1 ? std::string("batch") : param);
      } else {
        dim->set_dim_value(d);
      }
    }
  }
  onnx::ModelProto m_;
};

// The builder's model imported (optimized or not); fails the test on an error.
inline Graph MustImport(const OnnxBuilder& b, bool optimize = false) {
  auto g = b.Import(optimize);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(g).value() : Graph{};
}

// Expects the import to fail with a message holding every one of `parts`.
inline void ExpectError(const OnnxBuilder& b, std::initializer_list<std::string> parts) {
  auto r = b.Import();
  ASSERT_FALSE(r.ok());
  for (const std::string& p : parts)
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << r.status().message();
}

// Internal op names of the graph's nodes, in order.
inline std::vector<std::string> OpList(const Graph& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.nodes) ops.push_back(n.op);
  return ops;
}

inline const TensorDesc& OutputDesc(const Graph& g, int i = 0) { return g.tensors[g.outputs[i]]; }

// A 64-byte aligned float buffer, as the session's arena gives kernels.
class AlignedFloats {
 public:
  explicit AlignedFloats(size_t n = 0)
      : n_(n), p_(static_cast<float*>(::operator new((n ? n : 1) * 4, std::align_val_t(64)))) {}
  float* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  size_t n_;
  std::unique_ptr<float, Free> p_;
};

// Runs the graph node by node at `batch` through the op table. inputs[i] feeds graph input i.
inline Result<std::vector<std::vector<float>>> RunGraph(
    const Graph& g, const std::vector<std::vector<float>>& inputs, int64_t batch) {
  std::vector<AlignedFloats> values(g.tensors.size());
  auto data = [&](int t) -> float* {
    return g.tensors[t].is_constant() ? static_cast<float*>(const_cast<void*>(g.tensors[t].data))
                                      : values[t].data();
  };
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    int t = g.inputs[i];
    values[t] = AlignedFloats(inputs[i].size());
    if (static_cast<int64_t>(inputs[i].size()) != Resolve(g.tensors[t].dims, batch).NumElements())
      return Status::InvalidArgument("input size mismatch");
    std::memcpy(values[t].data(), inputs[i].data(), inputs[i].size() * 4);
  }
  for (const Node& n : g.nodes) {
    const OpDef* def = FindOp(n.op);
    if (!def) return Status::NotFound(n.op);
    auto kernel = def->create(n, g);
    if (!kernel.ok()) return kernel.status();
    std::vector<TensorView> in(n.inputs.size()), out(n.outputs.size());
    std::vector<Shape> in_s(n.inputs.size()), out_s(n.outputs.size());
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.inputs[i] < 0) continue;
      in[i].data = data(n.inputs[i]);
      in_s[i] = in[i].shape = Resolve(g.tensors[n.inputs[i]].dims, batch);
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      int t = n.outputs[i];
      out_s[i] = out[i].shape = Resolve(g.tensors[t].dims, batch);
      values[t] = AlignedFloats(out[i].shape.NumElements());
      out[i].data = values[t].data();
    }
    if (def->aliases_input) {  // the session shares the buffer; here we copy
      std::memcpy(out[0].data, in[0].data, in[0].bytes());
      continue;
    }
    size_t scratch_bytes = (*kernel)->ScratchBytes(in_s, out_s);
    AlignedFloats scratch(scratch_bytes / 4 + 1);
    KernelContext ctx{in.data(),      static_cast<int>(in.size()),
                      out.data(),     static_cast<int>(out.size()),
                      scratch.data(), scratch_bytes};
    (*kernel)->Run(ctx);
  }
  std::vector<std::vector<float>> result;
  for (int t : g.outputs) result.emplace_back(data(t), data(t) + values[t].size());
  return result;
}

}  // namespace edgeinfer::testing
