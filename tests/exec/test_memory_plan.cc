// The memory planner: plan_arenas against the lifetimes it was given (no two buffers alive at
// once share a byte; the peak lies between the most bytes alive at one step and the sum), and
// the memory pattern of sessions: runs with it give the results of runs without it, bit for bit,
// on an MLP, a CNN, Reshape views with Identity outputs, a Loop and a training step; a second
// run allocates only its arena and its outputs; a buffer held past its planned lifetime is never
// overwritten.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "exec/memory_plan.h"
#include "exec/provider.h"
#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "tests/model_builder.h"
#include "train/training_session.h"

namespace graft {
namespace {

size_t round_up(size_t bytes) { return (bytes + 63) / 64 * 64; }

TEST(MemoryPlan, BuffersAliveTogetherNeverShareBytes) {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const int steps = 1 + static_cast<int>(rng() % 60);
    const size_t arenas = 1 + rng() % 3;
    std::vector<BufferLifetime> buffers(1 + rng() % 150);
    for (auto& b : buffers) {
      b.first = static_cast<int>(rng() % static_cast<unsigned>(steps));
      b.last = b.first + static_cast<int>(rng() % 8);
      // Mostly small, a few large: the mix that fragments a first-come placement.
      b.bytes = rng() % 4 == 0 ? 1 + rng() % 100000 : 1 + rng() % 3000;
      b.arena = static_cast<int>(rng() % arenas);
    }
    const ArenaLayout layout = plan_arenas(buffers, arenas);
    ASSERT_EQ(layout.offsets.size(), buffers.size());
    ASSERT_EQ(layout.arena_bytes.size(), arenas);
    for (size_t i = 0; i < buffers.size(); ++i) {
      const auto& a = buffers[i];
      EXPECT_EQ(layout.offsets[i] % 64, 0u) << i;
      EXPECT_LE(layout.offsets[i] + round_up(a.bytes), layout.arena_bytes[size_t(a.arena)]) << i;
      for (size_t j = i + 1; j < buffers.size(); ++j) {
        const auto& b = buffers[j];
        if (a.arena != b.arena || a.last < b.first || b.last < a.first) continue;
        const bool apart = layout.offsets[i] + round_up(a.bytes) <= layout.offsets[j] ||
                           layout.offsets[j] + round_up(b.bytes) <= layout.offsets[i];
        EXPECT_TRUE(apart) << "buffers " << i << " and " << j << " are alive together";
      }
    }
    for (size_t arena = 0; arena < arenas; ++arena) {
      size_t sum = 0, most_alive = 0;
      for (const auto& b : buffers) sum += b.arena == int(arena) ? round_up(b.bytes) : 0;
      for (int step = 0; step < steps + 8; ++step) {
        size_t alive = 0;
        for (const auto& b : buffers) {
          if (b.arena == int(arena) && b.first <= step && step <= b.last)
            alive += round_up(b.bytes);
        }
        most_alive = std::max(most_alive, alive);
      }
      EXPECT_LE(layout.arena_bytes[arena], sum) << "arena " << arena;
      EXPECT_GE(layout.arena_bytes[arena], most_alive) << "arena " << arena;
    }
  }
}

TEST(MemoryPlan, AChainTakesTwoBuffers) {
  // Each value is read by the next step only: two buffers alternate.
  std::vector<BufferLifetime> chain;
  for (int i = 0; i < 6; ++i) chain.push_back({1000, i, i + 1, 0});
  const ArenaLayout layout = plan_arenas(chain, 1);
  EXPECT_EQ(layout.arena_bytes[0], 2 * 1024u);
  for (size_t i = 2; i < chain.size(); ++i) EXPECT_EQ(layout.offsets[i], layout.offsets[i - 2]);
}

TEST(MemoryPlan, ABufferTakesTheSmallestGapThatHoldsIt) {
  // Placed by size: p [0, 2048), q [2048, 3584) and s [4608, 5248) live at step 0 only, r and t
  // for good. At steps 2-3 the last buffer finds q's place (1536 bytes) and s's (640): the
  // smaller holds it.
  const std::vector<BufferLifetime> buffers = {{2048, 0, 3, 0}, {1536, 0, 0, 0}, {1024, 0, 3, 0},
                                               {640, 0, 0, 0},  {448, 0, 3, 0},  {256, 2, 3, 0}};
  const ArenaLayout layout = plan_arenas(buffers, 1);
  EXPECT_EQ(layout.offsets[1], 2048u);
  EXPECT_EQ(layout.offsets[3], 4608u);
  EXPECT_EQ(layout.offsets[5], 4608u);
  EXPECT_EQ(layout.arena_bytes[0], 5696u);
}

TEST(MemoryPlan, RejectsInvalidLifetimes) {
  EXPECT_THROW(plan_arenas({{8, 3, 2, 0}}, 1), InvalidArgument);
  EXPECT_THROW(plan_arenas({{8, 0, 1, 1}}, 1), InvalidArgument);
  EXPECT_THROW(plan_arenas({{8, 0, 1, 0}}, 1, 0), InvalidArgument);
  EXPECT_TRUE(plan_arenas({}, 2).offsets.empty());
}

// Host memory that counts what is allocated from it: the CPU kernels run on it through a
// provider of their own.
class CountingMemory final : public Allocator {
 public:
  const char* name() const override { return "Counting"; }
  void* allocate(size_t bytes) override {
    ++allocations;
    note_allocate(bytes);
    return std::aligned_alloc(64, round_up(bytes) + 64);
  }
  void release(void* ptr, size_t bytes) override {
    note_release(bytes);
    std::free(ptr);
  }
  int allocations = 0;
};

CountingMemory& counting_memory() {
  static auto* memory = new CountingMemory();
  return *memory;
}

// Copies its input. While `stash` is set it also keeps the input, as a kernel that held a view
// past the value's last reader would.
bool stash = false;
std::vector<Tensor> stashed;

class Stash final : public Kernel {
 public:
  explicit Stash(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    if (stash) stashed.push_back(x);
  }
};

const KernelRegistry& counting_registry() {
  static const KernelRegistry registry = [] {
    KernelRegistry reg = cpu_kernel_registry();
    reg.add({"test.memory", "Stash", 1, 1 << 30, {}, 0, make<Stash>});
    return reg;
  }();
  return registry;
}

class CountingProvider : public ExecutionProvider {
 public:
  const char* name() const override { return "CountingCPUProvider"; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return counting_registry(); }
  Allocator& allocator() const override { return counting_memory(); }
};

std::unique_ptr<ExecutionProvider> make_counting(const ProviderOptions&) {
  return std::make_unique<CountingProvider>();
}

struct Registrar {
  Registrar() {
    register_provider("CountingCPUProvider", 210, &make_counting, /*by_default=*/false);
  }
} registrar;

void ints_attribute(onnx::NodeProto* node, const std::string& name,
                    const std::vector<int64_t>& values) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void int64_initializer(onnx::GraphProto* g, const std::string& name,
                       const std::vector<int64_t>& dims, const std::vector<int64_t>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : values) t->add_int64_data(v);
}

std::function<float(int64_t)> normal_values(unsigned seed, float scale) {
  auto rng = std::make_shared<std::mt19937>(seed);
  return [rng, scale](int64_t) { return std::normal_distribution<float>(0, scale)(*rng); };
}

// y = MatMul applied `depth` times with one [64, 64] weight; `relu` puts a Relu (run in place)
// after each MatMul but the last. `stash_first` copies the first product through a Stash node.
ir::Model matmul_chain(int depth, bool relu, bool stash_first = false) {
  test_util::ModelBuilder b("chain");
  b.initializer("w", {64, 64}, normal_values(3, 0.2f));
  std::string x = "x";
  for (int i = 0; i < depth; ++i) {
    const std::string m = "m" + std::to_string(i);
    b.node("MatMul", {x, "w"}, i + 1 == depth ? "y" : m);
    x = m;
    if (i == 0 && stash_first) {
      b.node("Stash", {x}, "s")->set_domain("test.memory");
      x = "s";
    }
    if (relu && i + 1 < depth) {
      b.node("Relu", {x}, "r" + std::to_string(i));
      x = "r" + std::to_string(i);
    }
  }
  b.input("x", std::vector<std::string>{"N", "64"});
  b.output("y", std::vector<std::string>{"N", "64"});
  if (!stash_first) return b.build();
  onnx::ModelProto proto;
  proto.set_ir_version(10);
  proto.add_opset_import()->set_version(18);
  auto* custom = proto.add_opset_import();
  custom->set_domain("test.memory");
  custom->set_version(1);
  *proto.mutable_graph() = *b.graph();
  return ir::load_model_from_bytes(proto.SerializeAsString());
}

// Two hidden layers and a softmax.
ir::Model mlp() {
  test_util::ModelBuilder b("mlp");
  b.initializer("w1", {16, 32}, normal_values(1, 0.3f));
  b.initializer("b1", {32}, normal_values(2, 0.1f));
  b.initializer("w2", {32, 32}, normal_values(3, 0.3f));
  b.initializer("b2", {32}, normal_values(4, 0.1f));
  b.initializer("w3", {32, 10}, normal_values(5, 0.3f));
  b.node("MatMul", {"x", "w1"}, "h1");
  b.node("Add", {"h1", "b1"}, "a1");
  b.node("Relu", {"a1"}, "r1");
  b.node("MatMul", {"r1", "w2"}, "h2");
  b.node("Add", {"h2", "b2"}, "a2");
  b.node("Tanh", {"a2"}, "r2");
  b.node("MatMul", {"r2", "w3"}, "logits");
  b.node("Softmax", {"logits"}, "y");
  b.input("x", std::vector<std::string>{"N", "16"});
  b.output("y", std::vector<std::string>{"N", "10"});
  return b.build();
}

// Conv, Relu, MaxPool, Conv, Relu, GlobalAveragePool, Flatten, Gemm.
ir::Model cnn() {
  test_util::ModelBuilder b("cnn");
  b.initializer("k1", {4, 3, 3, 3}, normal_values(6, 0.3f));
  b.initializer("c1", {4}, normal_values(7, 0.1f));
  b.initializer("k2", {6, 4, 3, 3}, normal_values(8, 0.3f));
  b.initializer("wf", {5, 6}, normal_values(9, 0.3f));
  b.initializer("bf", {5}, normal_values(10, 0.1f));
  ints_attribute(b.node("Conv", {"x", "k1", "c1"}, "v1"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"v1"}, "u1");
  auto* pool = b.node("MaxPool", {"u1"}, "p1");
  ints_attribute(pool, "kernel_shape", {2, 2});
  ints_attribute(pool, "strides", {2, 2});
  b.node("Conv", {"p1", "k2"}, "v2");
  b.node("Relu", {"v2"}, "u2");
  b.node("GlobalAveragePool", {"u2"}, "g");
  b.node("Flatten", {"g"}, "f");
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"f", "wf", "bf"}, "y"), "transB", 1);
  b.input("x", std::vector<std::string>{"N", "3", "8", "8"});
  b.output("y", std::vector<std::string>{"N", "5"});
  return b.build();
}

// h is both an output (through Identity) and read through Reshape views; later products of
// h's size would take its place if it were planned.
ir::Model views() {
  test_util::ModelBuilder b("views");
  b.initializer("w", {8, 8}, normal_values(11, 0.4f));
  int64_initializer(b.graph(), "as3d", {3}, {-1, 4, 2});
  int64_initializer(b.graph(), "as2d", {2}, {-1, 8});
  b.node("MatMul", {"x", "w"}, "h");
  b.node("Identity", {"h"}, "h_out");
  b.node("Reshape", {"h", "as3d"}, "h3");
  b.node("Sigmoid", {"h3"}, "s3");
  b.node("Reshape", {"s3", "as2d"}, "s");
  b.node("MatMul", {"s", "w"}, "m1");
  b.node("MatMul", {"m1", "w"}, "m2");
  b.node("MatMul", {"m2", "w"}, "m3");
  b.node("Reshape", {"m3", "as3d"}, "y");
  b.input("x", std::vector<std::string>{"N", "8"});
  b.output("h_out", std::vector<std::string>{"N", "8"});
  b.output("y", std::optional<std::vector<std::string>>{});
  return b.build();
}

// h = Relu(x w); a Loop of 3 iterations carries v (v <- v w + h, h read from the outer scope) and
// scans each v; y = Sigmoid(v) after the loop.
ir::Model loop() {
  test_util::ModelBuilder b("loop");
  b.initializer("w", {8, 8}, normal_values(12, 0.3f));
  int64_initializer(b.graph(), "trips", {}, {3});
  b.node("MatMul", {"x", "w"}, "xw");
  b.node("Relu", {"xw"}, "h");
  b.node("Neg", {"x"}, "v0");
  auto* node = b.node("Loop", {"trips", "", "v0"}, "v_final");
  node->add_output("v_scan");
  auto* attr = node->add_attribute();
  attr->set_name("body");
  attr->set_type(onnx::AttributeProto::GRAPH);
  auto* body = attr->mutable_g();
  body->set_name("body");
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, int type) {
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(type);
  };
  declare(body->add_input(), "i", onnx::TensorProto::INT64);
  declare(body->add_input(), "cond_in", onnx::TensorProto::BOOL);
  declare(body->add_input(), "v_in", onnx::TensorProto::FLOAT);
  auto add_node = [&](const std::string& op, const std::vector<std::string>& in,
                      const std::string& out) {
    auto* n = body->add_node();
    n->set_op_type(op);
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
  };
  add_node("Identity", {"cond_in"}, "cond_out");
  add_node("MatMul", {"v_in", "w"}, "vw");
  add_node("Add", {"vw", "h"}, "v_out");
  add_node("Identity", {"v_out"}, "v_each");
  declare(body->add_output(), "cond_out", onnx::TensorProto::BOOL);
  declare(body->add_output(), "v_out", onnx::TensorProto::FLOAT);
  declare(body->add_output(), "v_each", onnx::TensorProto::FLOAT);
  b.node("Sigmoid", {"v_final"}, "y");
  b.input("x", std::vector<std::string>{"N", "8"});
  b.output("y", std::vector<std::string>{"N", "8"});
  b.output("v_scan", std::optional<std::vector<std::string>>{});
  return b.build();
}

Tensor random_tensor(Shape shape, unsigned seed) {
  Tensor t(DType::Float, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& v : t.span<float>()) v = normal(rng);
  return t;
}

void expect_identical(const std::vector<Value>& a, const std::vector<Value>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    const Tensor& x = a[k].tensor();
    const Tensor& y = b[k].tensor();
    ASSERT_EQ(x.shape(), y.shape()) << "output " << k;
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << "output " << k;
  }
}

SessionOptions with_pattern(bool on) {
  SessionOptions options;
  options.enable_mem_pattern = on;
  return options;
}

// Runs `model` with the pattern off and on, alternating two batch sizes so that each signature
// is recorded once and then planned; every run's outputs equal the plain run's.
void expect_same_with_and_without_pattern(ir::Model (*make)(), Shape shape) {
  InferenceSession plain(make(), with_pattern(false));
  InferenceSession patterned(make(), with_pattern(true));
  for (int round = 0; round < 3; ++round) {
    for (int64_t batch : {2, 5}) {
      SCOPED_TRACE("round " + std::to_string(round) + ", batch " + std::to_string(batch));
      shape[0] = batch;
      const Tensor x = random_tensor(shape, static_cast<unsigned>(round * 10 + batch));
      const std::vector<Value> expected = plain.run({}, {{"x", x}});
      expect_identical(patterned.run({}, {{"x", x}}), expected);
    }
  }
  EXPECT_TRUE(plain.planned_peak_bytes().empty());
  EXPECT_GT(patterned.planned_peak_bytes().at("Cpu"), 0u);
}

TEST(MemoryPattern, MlpMatchesPlainRuns) { expect_same_with_and_without_pattern(&mlp, {0, 16}); }

TEST(MemoryPattern, CnnMatchesPlainRuns) {
  expect_same_with_and_without_pattern(&cnn, {0, 3, 8, 8});
}

TEST(MemoryPattern, ReshapeViewsAndIdentityOutputsMatchPlainRuns) {
  expect_same_with_and_without_pattern(&views, {0, 8});
}

TEST(MemoryPattern, LoopMatchesPlainRuns) { expect_same_with_and_without_pattern(&loop, {0, 8}); }

TEST(MemoryPattern, ChainPlansTwoBuffersAndASecondRunAllocatesOnlyItsArena) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession session(matmul_chain(6, false), options, {"CountingCPUProvider"});
  const Tensor x = random_tensor({16, 64}, 1);
  const size_t product = 16 * 64 * sizeof(float);
  CountingMemory& memory = counting_memory();
  const size_t in_use = memory.bytes_in_use();

  memory.allocations = 0;
  const std::vector<Value> first = session.run({}, {{"x", x}});
  EXPECT_EQ(memory.allocations, 6);  // five intermediates and the output
  const size_t peak = session.planned_peak_bytes().at("Counting");
  EXPECT_EQ(peak, 2 * product);
  EXPECT_LT(peak, 5 * product);

  for (int run = 0; run < 3; ++run) {
    memory.allocations = 0;
    const std::vector<Value> again = session.run({}, {{"x", x}});
    // The first planned run takes the arena, later ones reuse it: they allocate the output alone.
    EXPECT_EQ(memory.allocations, run == 0 ? 2 : 1);
    expect_identical(again, first);
  }
  EXPECT_EQ(session.planned_peak_bytes().at("Counting"), peak);
  EXPECT_EQ(memory.bytes_in_use(), in_use + product + peak);  // `first` and the kept arena
}

TEST(MemoryPattern, InPlaceKernelsStillWriteIntoPlannedBuffers) {
  // Each Relu takes over its MatMul's buffer: planned or not, it allocates nothing.
  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession plain(matmul_chain(4, true), with_pattern(false), {"CountingCPUProvider"});
  InferenceSession session(matmul_chain(4, true), options, {"CountingCPUProvider"});
  const Tensor x = random_tensor({8, 64}, 2);
  CountingMemory& memory = counting_memory();
  memory.allocations = 0;
  const std::vector<Value> expected = plain.run({}, {{"x", x}});
  EXPECT_EQ(memory.allocations, 4);  // three MatMuls and the output
  session.run({}, {{"x", x}});
  for (int run = 0; run < 2; ++run) {
    memory.allocations = 0;
    expect_identical(session.run({}, {{"x", x}}), expected);
    EXPECT_EQ(memory.allocations, run == 0 ? 2 : 1);  // the arena once, and the output
  }
}

TEST(MemoryPattern, ABufferHeldPastItsPlannedLifetimeKeepsItsValues) {
  // The first product m0 is planned to die once Stash copied it, and m2 to take its place; a run
  // in which Stash keeps m0 stops placing buffers there, and later runs plan nothing.
  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession plain(matmul_chain(5, false, true), with_pattern(false),
                         {"CountingCPUProvider"});
  InferenceSession session(matmul_chain(5, false, true), options, {"CountingCPUProvider"});
  const Tensor x = random_tensor({8, 64}, 3);
  stash = true;
  stashed.clear();
  const std::vector<Value> expected = plain.run({}, {{"x", x}});
  const Tensor m0 = stashed.at(0).clone();
  stash = false;
  session.run({}, {{"x", x}});
  EXPECT_FALSE(session.planned_peak_bytes().empty());
  stash = true;
  stashed.clear();
  expect_identical(session.run({}, {{"x", x}}), expected);
  stash = false;
  ASSERT_EQ(stashed.size(), 1u);
  expect_identical({Value(stashed[0])}, {Value(m0)});
  stashed.clear();
  EXPECT_TRUE(session.planned_peak_bytes().empty());
  CountingMemory& memory = counting_memory();
  memory.allocations = 0;
  expect_identical(session.run({}, {{"x", x}}), expected);
  EXPECT_EQ(memory.allocations, 6);  // as without a pattern
}

TEST(MemoryPattern, ConcurrentRunsOfSeveralShapesMatchPlainRuns) {
  InferenceSession plain(mlp(), with_pattern(false));
  InferenceSession patterned(mlp(), with_pattern(true));
  std::vector<Tensor> inputs;
  std::vector<std::vector<Value>> expected;
  for (int64_t batch : {1, 3, 7, 3}) {
    inputs.push_back(random_tensor({batch, 16}, static_cast<unsigned>(batch)));
    expected.push_back(plain.run({}, {{"x", inputs.back()}}));
  }
  std::vector<int> mismatches(inputs.size(), 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < inputs.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int run = 0; run < 20; ++run) {
        const std::vector<Value> out = patterned.run({}, {{"x", inputs[t]}});
        const Tensor& y = out[0].tensor();
        const Tensor& want = expected[t][0].tensor();
        mismatches[t] += std::memcmp(y.raw(), want.raw(), want.nbytes()) != 0;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t t = 0; t < inputs.size(); ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// loss = mean((relu(x w1) w2 - target)^2).
ir::Model regression() {
  test_util::ModelBuilder b("regression");
  b.initializer("w1", {6, 16}, normal_values(13, 0.4f));
  b.initializer("w2", {16, 3}, normal_values(14, 0.4f));
  b.node("MatMul", {"x", "w1"}, "h");
  b.node("Relu", {"h"}, "r");
  b.node("MatMul", {"r", "w2"}, "y");
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "6"});
  b.input("target", std::vector<std::string>{"N", "3"});
  b.output("loss", std::vector<std::string>{});
  return b.build();
}

TEST(MemoryPattern, TrainingStepsMatchPlainStepsAndUpdateTheStateInPlace) {
  const ir::Model forward = regression();
  auto train = [&](bool pattern) {
    TrainingOptions options;
    options.loss = "loss";
    options.optimizer.kind = optim::Kind::AdamW;
    options.learning_rate = 0.01f;
    options.session.enable_mem_pattern = pattern;
    auto session = std::make_unique<TrainingSession>(forward, options);
    std::map<std::string, const void*> addresses;
    for (const auto& [name, t] : session->state()) addresses[name] = t.raw();
    std::vector<double> losses;
    for (unsigned step = 0; step < 5; ++step) {
      losses.push_back(session->train_step(
          {{"x", random_tensor({8, 6}, step)}, {"target", random_tensor({8, 3}, step + 50)}}));
      for (const auto& [name, t] : session->state())
        EXPECT_EQ(t.raw(), addresses.at(name)) << name << " moved at step " << step;
    }
    return std::make_pair(std::move(session), losses);
  };
  const auto [plain, plain_losses] = train(false);
  const auto [patterned, losses] = train(true);
  EXPECT_EQ(losses, plain_losses);
  for (const auto& [name, t] : plain->state())
    expect_identical({Value(patterned->state().at(name))}, {Value(t)});
}

}  // namespace
}  // namespace graft
