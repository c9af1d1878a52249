#include "inference/session.h"

#include <sys/mman.h>

#include <cblas.h>

#include "inference/arena_planner.h"
#include "inference/profiler.h"

namespace edgeinfer {

namespace {

constexpr int kNoBuffer = -1;

// Anonymous mapping for the arena: untouched pages cost nothing, and munmap returns every page
// to the kernel when the arena shrinks.
class ArenaMemory {
 public:
  ArenaMemory() = default;
  ArenaMemory(const ArenaMemory&) = delete;
  ArenaMemory& operator=(const ArenaMemory&) = delete;
  ~ArenaMemory() { Release(); }

  Status Allocate(size_t bytes) {
    Release();
    if (bytes == 0) return Status::Ok();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::IOError("mmap arena of " + std::to_string(bytes), errno);
    base_ = static_cast<uint8_t*>(p);
    bytes_ = bytes;
    return Status::Ok();
  }
  void Release() {
    if (base_) munmap(base_, bytes_);
    base_ = nullptr;
    bytes_ = 0;
  }
  uint8_t* base() const { return base_; }

 private:
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace

const char* BlasCoreName() { return openblas_get_corename(); }

struct Session::Impl {
  struct Step {
    const Node* node;
    const OpDef* op;
    std::unique_ptr<Kernel> kernel;
    std::vector<TensorView> in;   // views refreshed for each run's batch
    std::vector<TensorView> out;
    size_t scratch_bytes = 0;  // 0: the kernel needs none
    size_t scratch_offset = 0;
  };

  const Graph* graph = nullptr;
  Profiler* profiler = nullptr;
  NodeObserver* observer = nullptr;
  std::vector<Step> steps;
  std::vector<int> root;           // tensor -> tensor whose memory it uses (aliases)
  std::vector<int> buffer_of;      // tensor -> arena buffer, or kNoBuffer
  std::vector<void*> ptr;          // tensor -> memory (arena, constant, or bound input)
  ArenaMemory arena;

  Status Build(const Graph& g);
  void ResolveAliases();
  std::vector<BufferRequest> BufferRequests(int max_batch);
  Status Plan(int max_batch, size_t* arena_bytes, size_t* naive_bytes);
  void BindViews(int batch);
  void RunSteps();
};

Status Session::Impl::Build(const Graph& g) {
  graph = &g;
  steps.reserve(g.nodes.size());
  for (const Node& n : g.nodes) {
    Step s;
    s.node = &n;
    s.op = FindOp(n.op);
    if (!s.op) return Status::Unsupported(NodeContext(n) + ": unknown op");
    auto kernel = s.op->create(n, g);
    if (!kernel.ok()) return kernel.status().WithContext(NodeContext(n));
    s.kernel = std::move(kernel).value();
    s.in.resize(n.inputs.size());
    s.out.resize(n.outputs.size());
    steps.push_back(std::move(s));
  }
  ResolveAliases();
  ptr.assign(g.tensors.size(), nullptr);
  for (size_t t = 0; t < g.tensors.size(); ++t)
    if (g.tensors[t].is_constant()) ptr[t] = const_cast<void*>(g.tensors[t].data);
  return Status::Ok();
}

// An aliasing op's output shares its input's memory unless that input is a constant, or the
// output is a graph output whose memory would then be the caller's input.
void Session::Impl::ResolveAliases() {
  const Graph& g = *graph;
  root.resize(g.tensors.size());
  for (size_t t = 0; t < root.size(); ++t) root[t] = static_cast<int>(t);
  std::vector<char> is_input(g.tensors.size(), 0), is_output(g.tensors.size(), 0);
  for (int i : g.inputs) is_input[i] = 1;
  for (int o : g.outputs) is_output[o] = 1;
  for (const Step& s : steps) {
    if (!s.op->aliases_input) continue;
    int src = root[s.node->inputs[0]];
    int dst = s.node->outputs[0];
    if (g.tensors[src].is_constant() || (is_output[dst] && is_input[src])) continue;
    root[dst] = src;
  }
}

std::vector<BufferRequest> Session::Impl::BufferRequests(int max_batch) {
  const Graph& g = *graph;
  std::vector<BufferRequest> requests;
  std::vector<int>& buf = buffer_of;
  buf.assign(g.tensors.size(), kNoBuffer);
  std::vector<char> is_input(g.tensors.size(), 0);
  for (int i : g.inputs) is_input[i] = 1;
  const int end = static_cast<int>(steps.size());
  for (int s = 0; s < end; ++s) {
    for (int t : steps[s].node->outputs) {
      if (root[t] != t || is_input[t]) continue;
      Shape shape = Resolve(g.tensors[t].dims, max_batch);
      buf[t] = static_cast<int>(requests.size());
      requests.push_back({static_cast<size_t>(shape.NumElements()) *
                              DTypeSize(g.tensors[t].dtype), s, s});
    }
    for (int t : steps[s].node->inputs) {
      if (t < 0) continue;
      int b = buf[root[t]];
      if (b != kNoBuffer) requests[b].last_use = std::max(requests[b].last_use, s);
    }
  }
  for (int o : g.outputs)
    if (buf[root[o]] != kNoBuffer) requests[buf[root[o]]].last_use = end;
  return requests;
}

Status Session::Impl::Plan(int max_batch, size_t* arena_bytes, size_t* naive_bytes) {
  std::vector<BufferRequest> requests = BufferRequests(max_batch);
  // Scratch: each node's own buffer, alive only during its step.
  std::vector<int> scratch_request(steps.size(), kNoBuffer);
  for (size_t s = 0; s < steps.size(); ++s) {
    Step& st = steps[s];
    std::vector<Shape> in(st.in.size()), out(st.out.size());
    for (size_t i = 0; i < in.size(); ++i)
      if (st.node->inputs[i] >= 0) in[i] = Resolve(graph->tensors[st.node->inputs[i]].dims, max_batch);
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = Resolve(graph->tensors[st.node->outputs[i]].dims, max_batch);
    st.scratch_bytes = st.kernel->ScratchBytes(in, out);
    if (st.scratch_bytes) {
      scratch_request[s] = static_cast<int>(requests.size());
      int step = static_cast<int>(s);
      requests.push_back({st.scratch_bytes, step, step});
    }
  }
  ArenaPlan plan = PlanArena(requests);
  *arena_bytes = plan.total_bytes;
  *naive_bytes = NaiveArenaBytes(requests);
  arena.Release();  // the old arena goes back to the kernel before the new one is mapped
  EI_RETURN_IF_ERROR(arena.Allocate(plan.total_bytes));
  for (size_t t = 0; t < buffer_of.size(); ++t)
    if (buffer_of[t] != kNoBuffer) ptr[t] = arena.base() + plan.offsets[buffer_of[t]];
  for (size_t s = 0; s < steps.size(); ++s)
    if (scratch_request[s] != kNoBuffer) steps[s].scratch_offset = plan.offsets[scratch_request[s]];
  return Status::Ok();
}

void Session::Impl::BindViews(int batch) {
  const Graph& g = *graph;
  for (Step& st : steps) {
    for (size_t i = 0; i < st.in.size(); ++i) {
      int t = st.node->inputs[i];
      if (t < 0) continue;
      st.in[i].data = ptr[root[t]];
      st.in[i].dtype = g.tensors[t].dtype;
      st.in[i].shape = Resolve(g.tensors[t].dims, batch);
    }
    for (size_t i = 0; i < st.out.size(); ++i) {
      int t = st.node->outputs[i];
      st.out[i].data = ptr[root[t]];
      st.out[i].dtype = g.tensors[t].dtype;
      st.out[i].shape = Resolve(g.tensors[t].dims, batch);
    }
  }
}

void Session::Impl::RunSteps() {
  for (Step& st : steps) {
    KernelContext ctx;
    ctx.in = st.in.data();
    ctx.num_in = static_cast<int>(st.in.size());
    ctx.out = st.out.data();
    ctx.num_out = static_cast<int>(st.out.size());
    if (st.scratch_bytes) {
      ctx.scratch = arena.base() + st.scratch_offset;
      ctx.scratch_bytes = st.scratch_bytes;
    }
    ctx.profiler = profiler;
    if (!profiler) {
      st.kernel->Run(ctx);
    } else {
      int64_t start = Profiler::NowNs();
      st.kernel->Run(ctx);
      profiler->Record(&st.node->name, st.op->name, start, Profiler::NowNs() - start);
    }
    if (observer) observer->OnNode(*st.node, st.out);
  }
}

Result<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Model> model,
                                                 const SessionOptions& options) {
  if (!model) return Status::InvalidArgument("no model");
  if (options.max_batch < 1) return Status::InvalidArgument("max_batch must be at least 1");
  if (options.blas_threads > 0) openblas_set_num_threads(options.blas_threads);
  std::unique_ptr<Session> s(new Session());
  s->model_ = std::move(model);
  s->impl_ = std::make_unique<Impl>();
  s->impl_->profiler = options.profiler;
  s->impl_->observer = options.observer;
  EI_RETURN_IF_ERROR(s->impl_->Build(s->model_->graph()));
  EI_RETURN_IF_ERROR(s->Replan(options.max_batch));
  return s;
}

Session::~Session() = default;

bool Session::batch_dynamic() const {
  for (int i : model_->graph().inputs)
    if (HasBatch(model_->graph().tensors[i].dims)) return true;
  return false;
}

Status Session::Replan(int max_batch) {
  if (max_batch < 1) return Status::InvalidArgument("max_batch must be at least 1");
  // A graph without a batch dim runs one sample at a time.
  if (!batch_dynamic()) max_batch = 1;
  EI_RETURN_IF_ERROR(impl_->Plan(max_batch, &arena_bytes_, &naive_arena_bytes_));
  max_batch_ = max_batch;
  const Graph& g = model_->graph();
  outputs_.assign(g.outputs.size(), TensorView{});
  impl_->BindViews(max_batch);
  return Status::Ok();
}

Status Session::Run(std::span<const float* const> inputs, int batch) {
  const Graph& g = model_->graph();
  if (inputs.size() != g.inputs.size())
    return Status::InvalidArgument("expected " + std::to_string(g.inputs.size()) +
                                   " inputs, got " + std::to_string(inputs.size()));
  if (batch < 1 || batch > max_batch_)
    return Status::InvalidArgument("batch " + std::to_string(batch) + " outside 1.." +
                                   std::to_string(max_batch_));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) return Status::InvalidArgument("input " + std::to_string(i) + " is null");
    impl_->ptr[g.inputs[i]] = const_cast<float*>(inputs[i]);
  }
  impl_->BindViews(batch);
  impl_->RunSteps();
  for (size_t i = 0; i < outputs_.size(); ++i) {
    int t = g.outputs[i];
    outputs_[i].data = impl_->ptr[impl_->root[t]];
    outputs_[i].dtype = g.tensors[t].dtype;
    outputs_[i].shape = Resolve(g.tensors[t].dims, batch);
  }
  return Status::Ok();
}

int64_t Session::input_sample_elements(int i) const {
  const Graph& g = model_->graph();
  return Resolve(g.tensors[g.inputs[i]].dims, 1).NumElements();
}

int64_t Session::output_sample_elements(int i) const {
  const Graph& g = model_->graph();
  return Resolve(g.tensors[g.outputs[i]].dims, 1).NumElements();
}

}  // namespace edgeinfer
