#include <gtest/gtest.h>

#include "ir/error.h"
#include "ir/model.h"

namespace graft::ir {
namespace {

Node make_node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op_type = op;
  n.name = out.empty() ? op : out[0];
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Graph chain() {
  Graph g;
  g.name = "g";
  g.inputs.push_back({"x", nullptr, ""});
  g.outputs.push_back({"z", nullptr, ""});
  // Deliberately out of order: z needs y.
  g.add_node(make_node("Relu", {"y"}, {"z"}));
  g.add_node(make_node("Neg", {"x"}, {"y"}));
  return g;
}

TEST(Graph, TopologicalSortOrdersProducersFirst) {
  Graph g = chain();
  g.topological_sort();
  EXPECT_EQ(g.nodes[0]->op_type, "Neg");
  EXPECT_EQ(g.nodes[1]->op_type, "Relu");
}

TEST(Graph, TopologicalSortRejectsCycles) {
  Graph g;
  g.add_node(make_node("Neg", {"b"}, {"a"}));
  g.add_node(make_node("Neg", {"a"}, {"b"}));
  EXPECT_THROW(g.topological_sort(), InvalidArgument);
}

TEST(Graph, ReplaceUsesAndRemove) {
  Graph g = chain();
  g.topological_sort();
  Node* neg = g.producer("y");
  ASSERT_NE(neg, nullptr);
  g.replace_uses("y", "x");
  g.remove_node(neg);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0]->inputs[0], "x");
  EXPECT_EQ(g.consumers("x").size(), 1u);
}

TEST(Graph, FreeVariablesSeeNestedGraphs) {
  Graph body;
  body.outputs.push_back({"o", nullptr, ""});
  body.add_node(make_node("Add", {"outer", "c"}, {"o"}));
  Graph g;
  g.inputs.push_back({"cond", nullptr, ""});
  Node if_node = make_node("If", {"cond"}, {"r"});
  Attribute a;
  a.name = "then_branch";
  a.graphs.push_back(std::make_shared<Graph>(std::move(body)));
  if_node.attributes.push_back(a);
  g.add_node(std::move(if_node));
  auto fv = g.free_variables();
  EXPECT_EQ(fv, (std::vector<std::string>{"outer", "c"}));
  g.replace_uses("outer", "renamed");
  EXPECT_EQ(g.nodes[0]->attributes[0].graphs[0]->nodes[0]->inputs[0], "renamed");
}

}  // namespace
}  // namespace graft::ir
