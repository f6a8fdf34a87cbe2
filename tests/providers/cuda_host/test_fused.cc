// Fused elementwise chains: the transform (ir/transforms/fuse_elementwise.h) and the CUDA kernel
// that runs its nodes (providers/cuda/kernels/fused.h), compiled for the host. The fused model is
// checked as ONNX: it passes onnx::checker, and run through the CPU provider (which inlines the
// fused functions) and through ONNX's own inliner it gives the unfused model's results exactly.
// The kernel matches the unfused CPU result within 1e-5 (float32) and 1e-2 (16-bit floats, which
// the fused chain rounds once), and a session on a device provider fuses at level 2.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "exec/tensor_proto.h"
#include "ir/names.h"
#include "ir/serialize.h"
#include "ir/transforms/fuse_elementwise.h"
#include "onnx/checker.h"
#include "onnx/inliner/inliner.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/fused.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_fused<HostBackend>);

// A model of elementwise nodes, built node by node.
class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 20) {
    proto_.set_ir_version(10);
    proto_.add_opset_import()->set_version(opset);
    proto_.mutable_graph()->set_name("chain");
  }
  // A graph input fed per run with `value`.
  ModelBuilder& input(const std::string& name, const Tensor& value) {
    declare(proto_.mutable_graph()->add_input(), name, value.dtype(), value.shape());
    feeds_[name] = Value(value);
    return *this;
  }
  ModelBuilder& constant(const std::string& name, const Tensor& value) {
    tensor_to_proto(value, name, proto_.mutable_graph()->add_initializer());
    return *this;
  }
  ModelBuilder& node(const std::string& op, const std::vector<std::string>& inputs,
                     const std::string& output,
                     const std::function<void(onnx::NodeProto&)>& attrs = nullptr) {
    onnx::NodeProto* n = proto_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(output);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    if (attrs) attrs(*n);
    return *this;
  }
  ModelBuilder& output(const std::string& name, DType dtype, const Shape& shape) {
    declare(proto_.mutable_graph()->add_output(), name, dtype, shape);
    return *this;
  }
  ir::Model model() const { return ir::load_model_from_bytes(proto_.SerializeAsString()); }
  const std::map<std::string, Value>& feeds() const { return feeds_; }

 private:
  static void declare(onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                      const Shape& shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(static_cast<int>(dtype));
    for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::ModelProto proto_;
  std::map<std::string, Value> feeds_;
};

ir::Model fused(const ir::Model& model, int expected_nodes) {
  ir::Model m = model.clone();
  const int made = ir::fuse_elementwise(m, [](size_t) { return true; });
  EXPECT_EQ(made, expected_nodes);
  return m;
}

std::vector<Value> run_cpu(const ir::Model& model, const std::map<std::string, Value>& feeds) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession session(model.clone(), options, {"CPUExecutionProvider"});
  return session.run({}, feeds);
}

void expect_identical(const std::vector<Value>& got, const std::vector<Value>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    const Tensor& a = got[k].tensor();
    const Tensor& b = want[k].tensor();
    ASSERT_EQ(a.shape(), b.shape());
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << "output " << k;
  }
}

// The fused model as ONNX: valid, and its functions compute what the replaced nodes did, inlined
// by graft (a CPU session) and by ONNX's inliner.
void expect_same_as_unfused(const ir::Model& model, const ir::Model& fused_model,
                            const std::map<std::string, Value>& feeds) {
  const std::vector<Value> want = run_cpu(model, feeds);
  expect_identical(run_cpu(fused_model, feeds), want);
  onnx::ModelProto proto;
  ir::model_to_proto(fused_model, &proto);
  EXPECT_NO_THROW(onnx::checker::check_model(proto, /*full_check=*/true));
  onnx::inliner::InlineLocalFunctions(proto);
  expect_identical(run_cpu(ir::load_model_from_bytes(proto.SerializeAsString()), feeds), want);
}

// Fuses `b`'s model into `nodes` fused nodes and checks the result every way: as ONNX against
// the unfused model, and the kernel against the unfused CPU run.
void expect_fuses(const ModelBuilder& b, int nodes, double tol = 1e-5, double atol = 1e-6) {
  const ir::Model model = b.model();
  const ir::Model f = fused(model, nodes);
  expect_same_as_unfused(model, f, b.feeds());
  // The fused model on the device against its inlined run on the CPU, which is the unfused
  // model's (checked above).
  expect_matches_cpu(f, b.feeds(), tol, atol);
}

int count_op_prefix(const ir::Model& m, const std::string& prefix) {
  int n = 0;
  for (const auto& node : m.graph.nodes) n += node->op_type.rfind(prefix, 0) == 0;
  return n;
}

TEST(CudaHostFused, AddRelu) {
  for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const double tol = dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
    ModelBuilder b;
    b.input("x", random_tensor(dtype, {4, 5, 6}, -2, 2, 1))
        .input("bias", random_tensor(dtype, {6}, -1, 1, 2))
        .node("Add", {"x", "bias"}, "sum")
        .node("Relu", {"sum"}, "y")
        .output("y", dtype, {4, 5, 6});
    expect_fuses(b, 1, tol);
  }
}

TEST(CudaHostFused, MulAddTanhWithBroadcastOperands) {
  ModelBuilder b;
  b.input("x", random_tensor(DType::Float, {3, 1, 8}, -2, 2, 1))
      .input("scale", random_tensor(DType::Float, {5, 1}, -1, 1, 2))
      .constant("shift", random_tensor(DType::Float, {8}, -1, 1, 3))
      .node("Mul", {"x", "scale"}, "scaled")
      .node("Add", {"shift", "scaled"}, "shifted")
      .node("Tanh", {"shifted"}, "y")
      .output("y", DType::Float, {3, 5, 8});
  expect_fuses(b, 1);
}

// GELU as torch exports it: x * 0.5 * (1 + erf(x / sqrt(2))) in five nodes, x read twice.
TEST(CudaHostFused, ExportedGelu) {
  for (DType dtype : {DType::Float, DType::Float16}) {
    // Unfused, float16 rounds erf(x / sqrt(2)) near -1 to steps of 2^-11 before 1 + erf cancels,
    // an error of up to 2^-11 * |x| / 2 in y (|x| < 4); fused, the chain rounds once.
    const bool half = dtype == DType::Float16;
    ModelBuilder b;
    b.input("x", random_tensor(dtype, {16, 33}, -4, 4, 1))
        .constant("root2", tensor_of(dtype, {}, {1.4142135623730951}))
        .constant("one", tensor_of(dtype, {}, {1.0}))
        .constant("half", tensor_of(dtype, {}, {0.5}))
        .node("Div", {"x", "root2"}, "scaled")
        .node("Erf", {"scaled"}, "erf")
        .node("Add", {"erf", "one"}, "shifted")
        .node("Mul", {"x", "shifted"}, "product")
        .node("Mul", {"product", "half"}, "y")
        .output("y", dtype, {16, 33});
    expect_fuses(b, 1, half ? 1e-2 : 1e-5, half ? 2e-3 : 1e-6);
    const ir::Model f = fused(b.model(), 1);
    ASSERT_EQ(f.graph.nodes.size(), 1u);
    EXPECT_EQ(f.graph.nodes[0]->inputs.size(), 4u);  // x once, and the three constants
  }
}

// Every op of the vocabulary as a step, on positive operands: Abs -> Add 0.5 -> op, and for a
// binary op both operand orders (the chain value first and second).
TEST(CudaHostFused, EveryOp) {
  const std::vector<std::string> unary = {
      "Relu",       "Neg",   "Abs",  "Exp", "Log", "Sqrt",     "Tanh",      "Sigmoid", "Erf",
      "Reciprocal", "Floor", "Ceil", "Sin", "Cos", "Softplus", "LeakyRelu", "Elu",     "Gelu"};
  for (const auto& op : unary) {
    SCOPED_TRACE(op);
    ASSERT_EQ(ir::fused_step_arity(op), 1);
    // Log, Sqrt and Reciprocal on |x| + 0.5, the others on 0.5 - x.
    const bool positive = op == "Log" || op == "Sqrt" || op == "Reciprocal";
    ModelBuilder b;
    b.input("x", random_tensor(DType::Float, {7, 9}, -3, 3, 1))
        .constant("half", tensor_of(DType::Float, {}, {0.5}))
        .node(positive ? "Abs" : "Neg", {"x"}, "first")
        .node("Add", {"first", "half"}, "shifted")
        .node(op, {"shifted"}, "y")
        .output("y", DType::Float, {7, 9});
    expect_fuses(b, 1);
  }
  for (const std::string op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}) {
    ASSERT_EQ(ir::fused_step_arity(op), 2);
    for (bool chain_first : {true, false}) {
      SCOPED_TRACE(op + (chain_first ? " (chain, z)" : " (z, chain)"));
      ModelBuilder b;
      const std::vector<std::string> operands = chain_first
                                                    ? std::vector<std::string>{"magnitude", "z"}
                                                    : std::vector<std::string>{"z", "magnitude"};
      b.input("x", random_tensor(DType::Float, {6, 4}, -2, 2, 1))
          .input("z", random_tensor(DType::Float, {4}, 0.5, 2, 2))
          .node("Abs", {"x"}, "absolute")
          .node("Add", {"absolute", "z"}, "magnitude")
          .node(op, operands, "y")
          .output("y", DType::Float, {6, 4});
      expect_fuses(b, 1);
    }
  }
}

TEST(CudaHostFused, StepAttributes) {
  ModelBuilder b;
  b.input("x", random_tensor(DType::Float, {40}, -3, 3, 1))
      .node("LeakyRelu", {"x"}, "leaky", [](onnx::NodeProto& n) { set_attr(n, "alpha", 0.2f); })
      .node("Elu", {"leaky"}, "elu", [](onnx::NodeProto& n) { set_attr(n, "alpha", 0.7f); })
      .node("Gelu", {"elu"}, "y",
            [](onnx::NodeProto& n) { set_attr(n, "approximate", std::string("tanh")); })
      .output("y", DType::Float, {40});
  expect_fuses(b, 1);
}

TEST(CudaHostFused, SquareOfTheChainValue) {
  ModelBuilder b;
  b.input("x", random_tensor(DType::Float, {3, 3}, -2, 2, 1))
      .node("Sin", {"x"}, "s")
      .node("Mul", {"s", "s"}, "y")
      .output("y", DType::Float, {3, 3});
  expect_fuses(b, 1);
}

TEST(CudaHostFused, LeavesWhatIsNotAChain) {
  // An intermediate read twice, one that is a graph output, a value broadcast to a larger shape
  // and integers stay as they are.
  ModelBuilder twice;
  twice.input("x", random_tensor(DType::Float, {5}, -1, 1, 1))
      .node("Exp", {"x"}, "e")
      .node("Relu", {"e"}, "r")
      .node("Tanh", {"e"}, "t")
      .output("r", DType::Float, {5})
      .output("t", DType::Float, {5});
  EXPECT_EQ(count_op_prefix(fused(twice.model(), 0), "FusedElementwise"), 0);
  ModelBuilder output;
  output.input("x", random_tensor(DType::Float, {5}, -1, 1, 1))
      .node("Exp", {"x"}, "e")
      .node("Relu", {"e"}, "r")
      .output("e", DType::Float, {5})
      .output("r", DType::Float, {5});
  fused(output.model(), 0);
  ModelBuilder broadcast;
  broadcast.input("x", random_tensor(DType::Float, {4}, -1, 1, 1))
      .input("y", random_tensor(DType::Float, {3, 4}, -1, 1, 2))
      .node("Relu", {"x"}, "r")
      .node("Add", {"r", "y"}, "z")
      .output("z", DType::Float, {3, 4});
  fused(broadcast.model(), 0);
  ModelBuilder integers;
  integers.input("x", random_tensor(DType::Int64, {4}, -9, 9, 1))
      .node("Neg", {"x"}, "n")
      .node("Abs", {"n"}, "a")
      .output("a", DType::Int64, {4});
  fused(integers.model(), 0);
  // Nodes a provider without the kernel runs are left too.
  ModelBuilder chain;
  chain.input("x", random_tensor(DType::Float, {5}, -1, 1, 1))
      .node("Exp", {"x"}, "e")
      .node("Relu", {"e"}, "r")
      .output("r", DType::Float, {5});
  ir::Model m = chain.model();
  EXPECT_EQ(ir::fuse_elementwise(m, [](size_t node) { return node != 1; }), 0);
}

TEST(CudaHostFused, DistinctBodiesAreDistinctFunctions) {
  // Two Add -> Relu chains share one function; the Mul -> Sigmoid chain has its own.
  ModelBuilder b;
  b.input("x", random_tensor(DType::Float, {2, 8}, -2, 2, 1))
      .input("w", random_tensor(DType::Float, {8}, -1, 1, 2))
      .node("Add", {"x", "w"}, "a1")
      .node("Relu", {"a1"}, "r1")
      .node("Add", {"r1", "w"}, "a2")
      .node("Exp", {"a2"}, "e")
      .node("MatMul", {"e", "m"}, "p")
      .node("Add", {"p", "w"}, "a3")
      .node("Relu", {"a3"}, "r3")
      .node("Mul", {"r3", "w"}, "m3")
      .node("Sigmoid", {"m3"}, "y")
      .constant("m", random_tensor(DType::Float, {8, 8}, -1, 1, 3))
      .output("y", DType::Float, {2, 8});
  // Add -> Relu -> Add -> Exp, then Add -> Relu -> Mul -> Sigmoid: two bodies, two nodes.
  const ir::Model model = b.model();
  const ir::Model f = fused(model, 2);
  EXPECT_EQ(f.functions.size(), 2u);
  expect_same_as_unfused(model, f, b.feeds());
  expect_matches_cpu(f, b.feeds(), 1e-5, 1e-6, {"MatMul"});

  ModelBuilder same;
  same.input("x", random_tensor(DType::Float, {2, 8}, -2, 2, 1))
      .input("w", random_tensor(DType::Float, {8}, -1, 1, 2))
      .node("Add", {"x", "w"}, "a1")
      .node("Relu", {"a1"}, "r1")
      .node("MatMul", {"r1", "m"}, "p")
      .node("Add", {"p", "w"}, "a2")
      .node("Relu", {"a2"}, "y")
      .constant("m", random_tensor(DType::Float, {8, 8}, -1, 1, 3))
      .output("y", DType::Float, {2, 8});
  const ir::Model g = fused(same.model(), 2);
  EXPECT_EQ(g.functions.size(), 1u);
  EXPECT_EQ(count_op_prefix(g, ir::fused_elementwise_op(0)), 2);
  expect_same_as_unfused(same.model(), g, same.feeds());
}

TEST(CudaHostFused, LongChainsSplitAtTheKernelsLimits) {
  ModelBuilder steps;
  steps.input("x", random_tensor(DType::Float, {10}, -1, 1, 1));
  std::string v = "x";
  for (int k = 0; k < 20; ++k) {
    steps.node(k % 2 ? "Sin" : "Cos", {v}, "v" + std::to_string(k));
    v = "v" + std::to_string(k);
  }
  steps.output(v, DType::Float, {10});
  expect_fuses(steps, 2);  // 16 steps, then 4

  ModelBuilder inputs;
  inputs.input("x", random_tensor(DType::Float, {6}, -1, 1, 1));
  v = "x";
  for (int k = 0; k < 10; ++k) {
    const std::string w = "w" + std::to_string(k);
    inputs.input(w, random_tensor(DType::Float, {6}, -1, 1, 10 + k));
    inputs.node("Add", {v, w}, "s" + std::to_string(k));
    v = "s" + std::to_string(k);
  }
  inputs.output(v, DType::Float, {6});
  expect_fuses(inputs, 2);  // x and seven weights, then three weights
}

// plan_model fuses at level 2 the chains a device provider runs, and only those.
TEST(CudaHostFused, SessionsFuseOnTheDeviceOnly) {
  ModelBuilder b;
  b.input("x", random_tensor(DType::Float, {4, 6}, -2, 2, 1))
      .input("bias", random_tensor(DType::Float, {6}, -1, 1, 2))
      .node("Add", {"x", "bias"}, "sum")
      .node("Relu", {"sum"}, "r")
      .node("Mul", {"r", "bias"}, "y")
      .output("y", DType::Float, {4, 6});
  const std::string dir = ::testing::TempDir();
  auto saved = [&](const std::vector<std::string>& providers, const std::string& file) {
    SessionOptions options;
    options.graph_optimization_level = 2;
    options.optimized_model_filepath = dir + "/" + file;
    InferenceSession session(b.model(), options, providers);
    const std::vector<Value> out = session.run({}, b.feeds());
    expect_identical(out, run_cpu(b.model(), b.feeds()));
    ir::Model m = ir::load_model(options.optimized_model_filepath);
    std::filesystem::remove(options.optimized_model_filepath);
    return m;
  };
  const ir::Model on_device = saved({device_provider(), "CPUExecutionProvider"}, "fused.onnx");
  EXPECT_EQ(count_op_prefix(on_device, "FusedElementwise"), 1);
  const ir::Model on_cpu = saved({"CPUExecutionProvider"}, "unfused.onnx");
  EXPECT_EQ(count_op_prefix(on_cpu, "FusedElementwise"), 0);
}

TEST(CudaHostFused, KernelRejectsAMalformedProgram) {
  ModelBuilder b;
  b.input("x", random_tensor(DType::Float, {3}, -1, 1, 1))
      .node("Exp", {"x"}, "e")
      .node("Relu", {"e"}, "y")
      .output("y", DType::Float, {3});
  ir::Model f = fused(b.model(), 1);
  for (auto& a : f.graph.nodes[0]->attributes) {
    if (a.name == "operands") {
      a.proto = std::make_shared<onnx::AttributeProto>(*a.proto);
      a.proto->set_ints(0, ir::kFusedPrevious);  // the first step has no previous result
    }
  }
  SessionOptions options;
  options.graph_optimization_level = 0;
  try {
    InferenceSession session(std::move(f), options, {kHostTestProvider, "CPUExecutionProvider"});
    FAIL() << "expected a failure";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("step 0 (Exp) has operands -1"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace graft::test_util
