// Common-subexpression elimination (ir/transforms/cse.cc): what merges, what never does, and
// the merged model's outputs against the original's.
#include <gtest/gtest.h>

#include "ir/transforms/optimize.h"
#include "tests/ir/transforms/pass_test_util.h"

namespace graft {
namespace {

using test_util::expect_same_outputs;
using test_util::float_input;
using test_util::op_types;
using test_util::parse_model;

TEST(CommonSubexpressions, IdenticalChainsMerge) {
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3] x) => (float[2, 3] y) {
      a1 = Relu(x)
      a2 = Relu(x)
      b1 = Softmax<axis = 1>(a1)
      b2 = Softmax<axis = 1>(a2)
      c = Softmax<axis = 0>(a2)
      s = Add(b1, b2)
      y = Add(s, c)
    }
  )");
  const ir::Model before = m.clone();
  EXPECT_EQ(ir::eliminate_common_subexpressions(m.graph), 2);
  EXPECT_EQ(op_types(m.graph),
            (std::vector<std::string>{"Relu", "Softmax", "Softmax", "Add", "Add"}));
  EXPECT_EQ(m.graph.nodes[3]->inputs, (std::vector<std::string>{"b1", "b1"}));
  expect_same_outputs(before, m, {{"x", float_input({2, 3})}});
}

TEST(CommonSubexpressions, RandomOpsAndGraphOutputsNeverMerge) {
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3] x) => (float[2, 3] y, float[2, 3] z, float[2, 3] r) {
      n1 = RandomUniformLike(x)
      n2 = RandomUniformLike(x)
      r = Add(n1, n2)
      y = Neg(x)
      z = Neg(x)
    }
  )");
  EXPECT_EQ(ir::eliminate_common_subexpressions(m.graph), 0);
  EXPECT_EQ(m.graph.nodes.size(), 5u);
}

TEST(CommonSubexpressions, NestedGraphsMergeWithinTheirScope) {
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (bool c, float[2] x) => (float[2] y) {
      y = If(c) <then_branch = t () => (float[2] o) {
        p = Neg(x)
        q = Neg(x)
        o = Add(p, q)
      }, else_branch = e () => (float[2] o) {
        o = Neg(x)
      }>
    }
  )");
  const ir::Model before = m.clone();
  EXPECT_GT(ir::optimize(m, 1), 0);
  const ir::Graph& then_branch = *m.graph.nodes[0]->attributes[0].graphs[0];
  EXPECT_EQ(op_types(then_branch), (std::vector<std::string>{"Neg", "Add"}));
  Tensor yes(DType::Bool, {});
  yes.data<bool>()[0] = true;
  expect_same_outputs(before, m, {{"c", yes}, {"x", float_input({2})}});
}

}  // namespace
}  // namespace graft
