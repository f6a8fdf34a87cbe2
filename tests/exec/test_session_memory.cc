// The session's memory: one copy of each weight, weights every reader packed are freed, and runs
// of known shapes allocate nothing but their outputs.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "exec/provider.h"
#include "exec/session.h"
#include "exec/tensor_proto.h"
#include "onnx/onnx_pb.h"
#include "tests/model_builder.h"

namespace graft {
namespace {

constexpr const char* kPackingProvider = "PackingTestProvider";

// Host memory that counts the calls to allocate().
class CountingMemory final : public Allocator {
 public:
  const char* name() const override { return "Counting"; }
  void* allocate(size_t bytes) override {
    ++calls;
    return cpu_allocator().allocate(bytes);
  }
  void release(void* ptr, size_t bytes) override { cpu_allocator().release(ptr, bytes); }
  std::atomic<int> calls{0};
};

CountingMemory& counting_memory() {
  static auto* memory = new CountingMemory();
  return *memory;
}

// Per weight a PackingMatMul packed, whether the session had freed its elements by the kernel's
// latest run (the constant's tensor is kept, without elements).
std::map<std::string, bool>& weight_freed() {
  static std::map<std::string, bool> freed;
  return freed;
}

// MatMul of [M, K] by a constant [K, N] it copies at construction: it packs input 1 and never
// reads it again. A B that is not a constant is read each run, as the CPU provider's MatMul does.
class PackingMatMul final : public Kernel {
 public:
  explicit PackingMatMul(const KernelInfo& info) : weight_(info.node().inputs[1]) {
    const Tensor* b = info.constant_input(1);
    if (b == nullptr || b->rank() != 2) return;
    constant_ = b;
    k_ = b->dim(0);
    n_ = b->dim(1);
    const auto* data = b->data<float>();
    packed_.assign(data, data + b->size());
  }
  std::vector<int> packed_inputs() const override {
    return packed_.empty() ? std::vector<int>{} : std::vector<int>{1};
  }
  void compute(KernelContext& ctx) override {
    // Looks at the constant's tensor, never at its elements.
    if (constant_ != nullptr) weight_freed()[weight_] = constant_->raw() == nullptr;
    const Tensor& a = ctx.input(0);
    const float* b = packed_.empty() ? ctx.input(1).data<float>() : packed_.data();
    const int64_t k = packed_.empty() ? ctx.input(1).dim(0) : k_;
    const int64_t n = packed_.empty() ? ctx.input(1).dim(1) : n_;
    const int64_t m = a.dim(0);
    if (a.dim(1) != k) ctx.fail("inner dimensions differ");
    Tensor& y = ctx.output(0, DType::Float, {m, n});
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        float sum = 0;
        for (int64_t p = 0; p < k; ++p) sum += a.data<float>()[i * k + p] * b[p * n + j];
        y.data<float>()[i * n + j] = sum;
      }
    }
  }

 private:
  std::vector<float> packed_;
  int64_t k_ = 0, n_ = 0;
  std::string weight_;
  const Tensor* constant_ = nullptr;
};

// The CPU provider's kernels in counted memory, with MatMul taken by PackingMatMul.
class PackingProvider final : public ExecutionProvider {
 public:
  PackingProvider() {
    registry_.add({"", "MatMul", 13, 1 << 30, {DType::Float}, 0, make<PackingMatMul>});
    for (const KernelDef& def : cpu_kernel_registry().defs()) registry_.add(def);
  }
  const char* name() const override { return kPackingProvider; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry_, model, graph);
  }
  const KernelRegistry& registry() const override { return registry_; }
  Allocator& allocator() const override { return counting_memory(); }

 private:
  KernelRegistry registry_;
};

struct Registrar {
  Registrar() {
    register_provider(
        kPackingProvider, 210,
        [](const ProviderOptions&) -> std::unique_ptr<ExecutionProvider> {
          return std::make_unique<PackingProvider>();
        },
        /*by_default=*/false);
  }
} registrar;

// X [2, 3]: H = X W1, Y = H W2, Z = W2 W3, V = Y W4; outputs Y, Z, V and W4 itself. W1 and W3
// are read only where they are packed; W2 is also read as a MatMul's A; W4 is an output.
ir::Model packing_model() {
  test_util::ModelBuilder b("packing");
  auto weight = [&](const std::string& name, std::vector<int64_t> dims, float scale) {
    b.initializer(name, dims, [scale](int64_t i) { return scale * static_cast<float>(i % 7 - 3); });
  };
  weight("W1", {3, 4}, 0.5f);
  weight("W2", {4, 4}, 0.25f);
  weight("W3", {4, 4}, -0.75f);
  weight("W4", {4, 2}, 1.5f);
  b.input("X", std::vector<std::string>{"2", "3"});
  b.node("MatMul", {"X", "W1"}, "H");
  b.node("MatMul", {"H", "W2"}, "Y");
  b.node("MatMul", {"W2", "W3"}, "Z");
  b.node("MatMul", {"Y", "W4"}, "V");
  for (const char* out : {"Y", "Z", "V", "W4"}) b.output(out, std::nullopt);
  ir::Model model = b.build();
  // The weights as raw bytes, the form files hold them in.
  for (auto& t : model.graph.initializers) {
    auto raw = std::make_shared<onnx::TensorProto>();
    tensor_to_proto(tensor_from_proto(*t), t->name(), raw.get());
    t = std::move(raw);
  }
  return model;
}

std::map<std::string, Value> packing_feeds() {
  Tensor x(DType::Float, {2, 3});
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = 0.1f * static_cast<float>(i) - 0.2f;
  return {{"X", Value(x)}};
}

void expect_same(const std::vector<Value>& got, const std::vector<Value>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Tensor& g = got[i].tensor();
    const Tensor& w = want[i].tensor();
    ASSERT_EQ(g.shape(), w.shape()) << "output " << i;
    for (int64_t k = 0; k < g.size(); ++k)
      EXPECT_NEAR(g.data<float>()[k], w.data<float>()[k], 1e-5)
          << "output " << i << " [" << k << "]";
  }
}

TEST(SessionMemory, FreesWeightsEveryReaderPackedAndKeepsTheRest) {
  ir::Model model = packing_model();
  std::vector<Value> want;
  {
    // The reference: the unoptimized graph on the CPU provider, from a copy of the model (which
    // shares its weights until it goes).
    SessionOptions plain;
    plain.graph_optimization_level = 0;
    InferenceSession reference(model.clone(), plain, {"CPUExecutionProvider"});
    want = reference.run({}, packing_feeds());
  }
  InferenceSession session(std::move(model), {}, {kPackingProvider});
  weight_freed().clear();
  for (int run = 0; run < 3; ++run) expect_same(session.run({}, packing_feeds()), want);
  const std::map<std::string, bool> expected = {{"W1", true},    // read only where it was packed
                                                {"W2", false},   // also read unpacked, as Z's A
                                                {"W3", true},    // read only where it was packed
                                                {"W4", false}};  // a graph output
  EXPECT_EQ(weight_freed(), expected);
}

TEST(SessionMemory, WeightsAreNotCopied) {
  ir::Model model = packing_model();
  std::weak_ptr<onnx::TensorProto> w4 = model.graph.initializers.back();
  const void* bytes = w4.lock()->raw_data().data();
  InferenceSession session(std::move(model), {}, {kPackingProvider});
  const std::vector<Value> out = session.run({"W4"}, packing_feeds());
  EXPECT_EQ(out[0].tensor().raw(), bytes) << "the weight was copied";
}

TEST(SessionMemory, RunsOfKnownShapesAllocateOnlyTheirOutputs) {
  InferenceSession session(packing_model(), {}, {kPackingProvider});
  auto allocations = [&] {
    const int before = counting_memory().calls.load();
    session.run({}, packing_feeds());
    return counting_memory().calls.load() - before;
  };
  // Y, Z and V are made by kernels each run (outputs leave the run); W4 is the weight itself.
  constexpr int kOutputs = 3;
  EXPECT_EQ(allocations(), kOutputs + 1) << "the first run allocates H as well";
  EXPECT_LE(allocations(), kOutputs + 1) << "the second run takes the planned arena";
  for (int run = 0; run < 3; ++run) EXPECT_EQ(allocations(), kOutputs) << "steady run " << run;
}

TEST(SessionMemory, WithoutMemoryPatternEveryRunAllocatesItsIntermediates) {
  SessionOptions options;
  options.enable_mem_pattern = false;
  InferenceSession session(packing_model(), options, {kPackingProvider});
  session.run({}, packing_feeds());
  const int before = counting_memory().calls.load();
  session.run({}, packing_feeds());
  EXPECT_EQ(counting_memory().calls.load() - before, 4);
}

}  // namespace
}  // namespace graft
