#include <gtest/gtest.h>

#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

// y = Relu(x + b) with b an initializer, x of shape [N, 3].
std::string add_relu_model(const std::string& relu_op = "Relu",
                           const std::string& relu_domain = "") {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* opset = m.add_opset_import();
  opset->set_version(17);
  if (!relu_domain.empty()) {
    auto* custom = m.add_opset_import();
    custom->set_domain(relu_domain);
    custom->set_version(1);
  }
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(3);
  for (float v : {1.0f, -1.0f, 0.5f}) b->add_float_data(v);
  auto* add = g->add_node();
  add->set_op_type("Add");
  add->add_input("x");
  add->add_input("b");
  add->add_output("s");
  auto* relu = g->add_node();
  relu->set_op_type(relu_op);
  relu->set_domain(relu_domain);
  relu->set_name("act");
  relu->add_input("s");
  relu->add_output("y");
  for (auto* info : {g->add_input(), g->add_output()}) {
    info->set_name(info == &g->input(0) ? "x" : "y");
    auto* tt = info->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
    tt->mutable_shape()->add_dim()->set_dim_value(3);
  }
  return m.SerializeAsString();
}

TEST(InferenceSession, RunsAndReportsIO) {
  InferenceSession s = InferenceSession::from_bytes(add_relu_model());
  ASSERT_EQ(s.inputs().size(), 1u);
  EXPECT_EQ(s.inputs()[0].type, "tensor(float)");
  EXPECT_EQ(s.inputs()[0].dims, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(s.inputs()[0].dim_params[0], "N");
  Tensor x(DType::Float, {2, 3});
  float in[] = {0, 0, 0, -2, 2, -2};
  std::copy(in, in + 6, x.data<float>());
  auto out = s.run({}, {{"x", x}});
  ASSERT_EQ(out.size(), 1u);
  const Tensor& y = out[0].tensor();
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  float want[] = {1, 0, 0.5f, 0, 1, 0};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], want[i]);
}

TEST(InferenceSession, MissingKernelNamesOpDomainAndOpset) {
  try {
    InferenceSession::from_bytes(add_relu_model("Swish", "com.example"));
    FAIL() << "expected NotImplemented";
  } catch (const NotImplemented& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("Swish"), std::string::npos) << what;
    EXPECT_NE(what.find("com.example"), std::string::npos) << what;
    EXPECT_NE(what.find("opset 1"), std::string::npos) << what;
    EXPECT_NE(what.find("'act'"), std::string::npos) << what;
  }
}

TEST(InferenceSession, RejectsWrongFeeds) {
  InferenceSession s = InferenceSession::from_bytes(add_relu_model());
  EXPECT_THROW(s.run({}, {{"x", Tensor(DType::Double, {1, 3})}}), InvalidArgument);
  EXPECT_THROW(s.run({}, {{"x", Tensor(DType::Float, {1, 4})}}), InvalidArgument);
  EXPECT_THROW(s.run({}, {{"nope", Tensor(DType::Float, {1, 3})}}), InvalidArgument);
  EXPECT_THROW(s.run({}, {}), InvalidArgument);
  EXPECT_EQ(s.run({}, {{"x", Tensor(DType::Float, {4, 3})}})[0].tensor().dim(0), 4);
}

TEST(Model, SerializeRoundTripKeepsTheGraph) {
  ir::Model m = ir::load_model_from_bytes(add_relu_model());
  ir::Model back = ir::load_model_from_bytes(ir::serialize_model(m));
  ASSERT_EQ(back.graph.nodes.size(), 2u);
  EXPECT_EQ(back.graph.nodes[1]->op_type, "Relu");
  EXPECT_EQ(back.opset(""), 17);
  EXPECT_NE(back.graph.find_initializer("b"), nullptr);
}

TEST(Model, TruncatedBytesAreRejected) {
  std::string bytes = add_relu_model();
  EXPECT_THROW(ir::load_model_from_bytes(bytes.substr(0, bytes.size() / 2)), InvalidArgument);
}

}  // namespace
}  // namespace graft
