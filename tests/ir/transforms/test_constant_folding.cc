// Constant folding (ir/transforms/constant_folding.cc) with the session's evaluator
// (exec/constant_evaluator.h): node counts before and after, and the folded model's outputs
// against the original's.
#include <gtest/gtest.h>

#include "exec/constant_evaluator.h"
#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"
#include "tests/ir/transforms/pass_test_util.h"

namespace graft {
namespace {

using test_util::expect_same_outputs;
using test_util::float_input;
using test_util::op_types;
using test_util::parse_model;

int fold(ir::Model& m) { return ir::fold_constants(m.graph, cpu_constant_evaluator(m)); }

// The shape arithmetic PyTorch's exporter writes before a Reshape, on a statically shaped input.
const char* kShapeChain = R"(
  <ir_version: 8, opset_import: ["" : 17]>
  g (float[2, 3, 4] x) => (float[2, 12] y) {
    s = Shape(x)
    i0 = Constant<value = int64 {0}>()
    d0 = Gather<axis = 0>(s, i0)
    axes = Constant<value = int64[1] {0}>()
    u0 = Unsqueeze(d0, axes)
    minus = Constant<value = int64[1] {-1}>()
    shape = Concat<axis = 0>(u0, minus)
    y = Reshape(x, shape)
  }
)";

TEST(ConstantFolding, ShapeArithmeticBecomesOneInitializer) {
  ir::Model m = parse_model(kShapeChain);
  const ir::Model before = m.clone();
  EXPECT_GT(fold(m), 0);
  ir::eliminate_dead_nodes(m.graph);
  EXPECT_EQ(op_types(m.graph), std::vector<std::string>{"Reshape"});
  ASSERT_EQ(m.graph.initializers.size(), 1u);
  EXPECT_EQ(m.graph.initializers[0]->name(), "shape");
  expect_same_outputs(before, m, {{"x", float_input({2, 3, 4})}});
}

TEST(ConstantFolding, DynamicShapesAndGraphInputsStay) {
  // x's first dim is symbolic; w is an initializer the caller may override.
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[N, 3] x, float[3] w) => (float[N, 3] y, int64[2] s) <float[3] w = {1, 2, 3}> {
      s = Shape(x)
      w2 = Neg(w)
      y = Add(x, w2)
    }
  )");
  EXPECT_EQ(fold(m), 0);
  EXPECT_EQ(op_types(m.graph), (std::vector<std::string>{"Shape", "Neg", "Add"}));
}

TEST(ConstantFolding, ComputesWithKernelsAndSkipsRandomOps) {
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3] x) => (float[2, 3] y, float[2, 3] r) <float[3, 2] w = {1, 2, 3, 4, 5, 6}> {
      wt = Transpose<perm = [1, 0]>(w)
      half = Constant<value_float = 0.5>()
      ws = Mul(wt, half)
      y = Add(x, ws)
      noise = RandomNormal<shape = [2, 3]>()
      r = Mul(x, noise)
    }
  )");
  const ir::Model before = m.clone();
  EXPECT_EQ(fold(m), 3);  // Transpose, Constant, Mul
  EXPECT_EQ(op_types(m.graph), (std::vector<std::string>{"Add", "RandomNormal", "Mul"}));
  // r is random: compare y only, through a model that outputs y alone.
  ir::Model before_y = before.clone(), after_y = m.clone();
  before_y.graph.outputs.resize(1);
  after_y.graph.outputs.resize(1);
  ir::eliminate_dead_nodes(before_y.graph);
  ir::eliminate_dead_nodes(after_y.graph);
  expect_same_outputs(before_y, after_y, {{"x", float_input({2, 3})}});
}

TEST(ConstantFolding, OutputsLargerThanTheCapStay) {
  // 1024 x 1024 floats (4 MiB) from a 2-element shape: over max(largest input, 1 MiB).
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1024, 1024] x) => (float[1024, 1024] y) {
      shape = Constant<value = int64[2] {1024, 1024}>()
      ones = ConstantOfShape<value = float[1] {1}>(shape)
      small = Constant<value = int64[2] {16, 16}>()
      fits = ConstantOfShape<value = float[1] {1}>(small)
      y = Add(x, ones)
      unused = Neg(fits)
    }
  )");
  fold(m);
  const auto ops = op_types(m.graph);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "ConstantOfShape"), 1);
  EXPECT_NE(m.graph.find_initializer("shape"), nullptr);
  EXPECT_NE(m.graph.find_initializer("unused"), nullptr);
}

TEST(ConstantFolding, GraphOutputsKeepTheirNodes) {
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y, float[2] c) {
      c = Constant<value = float[2] {1, 2}>()
      y = Add(x, c)
    }
  )");
  EXPECT_EQ(fold(m), 0);
  EXPECT_EQ(op_types(m.graph), (std::vector<std::string>{"Constant", "Add"}));
}

}  // namespace
}  // namespace graft
