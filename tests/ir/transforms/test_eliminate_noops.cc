// No-op elimination (ir/transforms/eliminate_noops.cc): each kind of no-op before and after,
// and the rewritten model's outputs against the original's.
#include <gtest/gtest.h>

#include "ir/transforms/optimize.h"
#include "tests/ir/transforms/pass_test_util.h"

namespace graft {
namespace {

using test_util::expect_same_outputs;
using test_util::float_input;
using test_util::op_types;
using test_util::parse_model;

struct NoopCase {
  const char* name;
  const char* body;                    // nodes from x (float[2, 3, 4]) to y
  std::vector<std::string> ops_after;  // after eliminate_noops and eliminate_dead_nodes
};

class Noops : public ::testing::TestWithParam<NoopCase> {};

TEST_P(Noops, RemovedAndOutputsKept) {
  const NoopCase& c = GetParam();
  ir::Model m = parse_model(std::string(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3, 4] x) => (float y) {
  )") + c.body + "}");
  const ir::Model before = m.clone();
  ir::fold_constants(m.graph, nullptr);  // the Constant nodes become initializers
  ir::eliminate_noops(m.graph);
  ir::eliminate_dead_nodes(m.graph);
  EXPECT_EQ(op_types(m.graph), c.ops_after);
  expect_same_outputs(before, m, {{"x", float_input({2, 3, 4})}});
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, Noops,
    ::testing::Values(
        NoopCase{"identity_dropout", "a = Identity(x)\n b = Dropout(a)\n y = Relu(b)", {"Relu"}},
        NoopCase{"cast_same_type", "a = Cast<to = 1>(x)\n y = Relu(a)", {"Relu"}},
        NoopCase{"cast_other_type",
                 "a = Cast<to = 11>(x)\n b = Relu(a)\n y = Cast<to = 1>(b)",
                 {"Cast", "Relu", "Cast"}},
        NoopCase{"transposes_cancel",
                 "a = Transpose<perm = [1, 2, 0]>(x)\n b = Transpose<perm = [2, 0, 1]>(a)\n"
                 " y = Relu(b)",
                 {"Relu"}},
        NoopCase{"transposes_compose",
                 "a = Transpose<perm = [1, 0, 2]>(x)\n b = Transpose<perm = [0, 2, 1]>(a)\n"
                 " y = Relu(b)",
                 {"Transpose", "Relu"}},
        NoopCase{"reshape_same_shape",
                 "s = Constant<value = int64[3] {2, -1, 4}>()\n a = Reshape(x, s)\n y = Relu(a)",
                 {"Relu"}},
        NoopCase{"reshape_chain",
                 "s1 = Constant<value = int64[2] {6, 4}>()\n a = Reshape(x, s1)\n"
                 " s2 = Constant<value = int64[2] {4, 6}>()\n b = Reshape(a, s2)\n y = Relu(b)",
                 {"Reshape", "Relu"}},
        NoopCase{"reshape_chain_with_zero_stays",
                 "s1 = Constant<value = int64[2] {6, 4}>()\n a = Reshape(x, s1)\n"
                 " s2 = Constant<value = int64[3] {0, 2, 2}>()\n b = Reshape(a, s2)\n y = Relu(b)",
                 {"Reshape", "Reshape", "Relu"}},
        NoopCase{"flatten_then_reshape",
                 "a = Flatten<axis = 1>(x)\n s = Constant<value = int64[2] {4, 6}>()\n"
                 " b = Reshape(a, s)\n y = Relu(b)",
                 {"Reshape", "Relu"}},
        NoopCase{"expand_same_shape",
                 "s = Constant<value = int64[3] {1, 3, 1}>()\n a = Expand(x, s)\n y = Relu(a)",
                 {"Relu"}},
        NoopCase{"unsqueeze_squeeze",
                 "ax = Constant<value = int64[2] {-1, 1}>()\n a = Unsqueeze(x, ax)\n"
                 " b = Squeeze(a, ax)\n y = Relu(b)",
                 {"Relu"}},
        NoopCase{"unsqueeze_squeeze_other_axes",
                 "a1 = Constant<value = int64[2] {0, 2}>()\n a = Unsqueeze(x, a1)\n"
                 " a2 = Constant<value = int64[1] {0}>()\n b = Squeeze(a, a2)\n y = Relu(b)",
                 {"Unsqueeze", "Squeeze", "Relu"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Noops, GraphOutputKeepsItsName) {
  ir::Model m = parse_model(R"(
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) {
      a = Relu(x)
      y = Cast<to = 1>(a)
    }
  )");
  EXPECT_EQ(ir::eliminate_noops(m.graph), 0);
  EXPECT_EQ(m.graph.outputs[0].name, "y");
  EXPECT_EQ(op_types(m.graph), (std::vector<std::string>{"Relu", "Cast"}));
}

}  // namespace
}  // namespace graft
