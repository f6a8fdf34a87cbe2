// com.graft's elementwise gradient kernels (providers/cuda/kernels/training.h), compiled for the
// host, against the CPU provider's: float32 within 1e-5, the 16-bit floats within 1e-2.
#include <gtest/gtest.h>

#include "ir/names.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/training.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_training<HostBackend>);

// ReluGrad(dY, Y) -> dX as a model (ONNX infers no types for com.graft ops, so dX is declared with
// dY's type). dY is Neg(in0); with `keep_dy` it is also a graph output, which ReluGrad must then
// not overwrite, else it may compute in place.
ir::Model relu_grad_model(DType dtype, const Shape& shape, bool keep_dy) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(18);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain(names::kDomain);
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name("relu_grad");
  auto declare = [&](onnx::ValueInfoProto* v, const std::string& name) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(static_cast<int>(dtype));
    for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  declare(g->add_input(), "in0");
  declare(g->add_input(), "in1");
  declare(g->add_output(), "out0");
  if (keep_dy) declare(g->add_output(), "dy");
  auto* neg = g->add_node();
  neg->set_op_type("Neg");
  neg->add_input("in0");
  neg->add_output("dy");
  auto* n = g->add_node();
  n->set_domain(names::kDomain);
  n->set_op_type("ReluGrad");
  n->set_name("node");
  n->add_input("dy");
  n->add_input("in1");
  n->add_output("out0");
  return ir::load_model_from_bytes(m.SerializeAsString());
}

TEST(CudaHostTrainingOps, ReluGradMatchesCpu) {
  for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const double tol = dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
    const Shape shape = {3, 5, 7};
    for (bool keep_dy : {false, true}) {
      expect_matches_cpu(relu_grad_model(dtype, shape, keep_dy),
                         {{"in0", Value(random_tensor(dtype, shape, -3, 3, 1))},
                          {"in1", Value(random_tensor(dtype, shape, -1, 1, 2))}},
                         tol, 1e-6, {"Neg"});
    }
  }
}

TEST(CudaHostTrainingOps, ReluGradPassesNoGradientWhereYIsNotPositive) {
  const Tensor y = tensor_of(DType::Float, {6}, {-1, 0, 2, NAN, 1e-30, -0.0});
  expect_matches_cpu(relu_grad_model(DType::Float, {6}, false),
                     {{"in0", Value(random_tensor(DType::Float, {6}, 1, 2))}, {"in1", Value(y)}},
                     1e-5, 1e-6, {"Neg"});
}

TEST(CudaHostTrainingOps, ReluGradRejectsMismatchedShapes) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  ir::Model model = relu_grad_model(DType::Float, {4}, false);
  model.graph.inputs[1].type->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(
      5);
  InferenceSession session(std::move(model), options, {kHostTestProvider, "CPUExecutionProvider"});
  try {
    session.run({}, {{"in0", Value(random_tensor(DType::Float, {4}))},
                     {"in1", Value(random_tensor(DType::Float, {5}))}});
    FAIL() << "expected a failure";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("[com.graft.ReluGrad] node 'node'"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("must share shape"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace graft::test_util
