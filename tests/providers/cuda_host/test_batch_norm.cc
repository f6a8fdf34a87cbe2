// The CUDA provider's BatchNormalization and com.graft BatchNormGrad (providers/cuda/kernels/
// batch_norm.h) on the host backend, against the CPU provider: inference and training mode
// (opset 15's running statistics with momentum, opset 9's running and batch statistics), inputs
// of rank 2 to 5, the 16-bit floats with parameters of their own type or float, and the
// gradients.
#include <gtest/gtest.h>

#include "providers/cuda/kernels/batch_norm.h"
#include "tests/providers/cuda_host/dnn_cases.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_batch_norm<HostBackend>);

const DType kDtypes[] = {DType::Float, DType::Float16, DType::BFloat16, DType::Double};

// X of `shape` in `dtype`, then scale, B, mean and var of `params`.
std::vector<Tensor> batch_norm_inputs(const Shape& shape, DType dtype, DType params) {
  const Shape c = {shape[1]};
  return {random_tensor(dtype, shape, -2, 3, 21), random_tensor(params, c, 0.5, 1.5, 22),
          random_tensor(params, c, -1, 1, 23), random_tensor(params, c, -0.5, 0.5, 24),
          random_tensor(params, c, 0.5, 2, 25)};
}

std::function<void(onnx::NodeProto&)> batch_norm_attrs(int64_t training, float momentum = 0.9f,
                                                       float epsilon = 1e-5f) {
  return [=](onnx::NodeProto& n) {
    if (training) set_attr(n, "training_mode", training);
    set_attr(n, "momentum", momentum);
    set_attr(n, "epsilon", epsilon);
  };
}

TEST(CudaHostBatchNorm, Inference) {
  for (DType dtype : kDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto [rtol, atol] = dnn_tolerance(dtype);
    for (const Shape& x : {Shape{2, 3, 5, 4}, Shape{4, 3}, Shape{2, 2, 3, 4, 2}, Shape{1, 4, 7}})
      expect_op_matches_cpu({"BatchNormalization", batch_norm_inputs(x, dtype, dtype), 1, 15,
                             batch_norm_attrs(0, 0.9f, 1e-3f)},
                            rtol, atol);
    expect_op_matches_cpu({"BatchNormalization", batch_norm_inputs({2, 3, 4, 4}, dtype, dtype), 1,
                           9, batch_norm_attrs(0)},
                          rtol, atol);
  }
}

TEST(CudaHostBatchNorm, SixteenBitDataWithFloatParameters) {
  for (DType dtype : {DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    for (int64_t training : {0, 1}) {
      expect_op_matches_cpu(
          {"BatchNormalization", batch_norm_inputs({3, 4, 5, 3}, dtype, DType::Float),
           training ? 3 : 1, 15, batch_norm_attrs(training)},
          1e-2, 1e-2);
    }
  }
}

TEST(CudaHostBatchNorm, TrainingRunningStatistics) {
  for (DType dtype : kDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto [rtol, atol] = dnn_tolerance(dtype);
    for (const Shape& x : {Shape{4, 3, 5, 6}, Shape{8, 5}, Shape{2, 3, 3, 2, 4}}) {
      expect_op_matches_cpu({"BatchNormalization", batch_norm_inputs(x, dtype, dtype), 3, 15,
                             batch_norm_attrs(1, 0.8f)},
                            rtol, atol);
    }
  }
}

TEST(CudaHostBatchNorm, OpsetNineTrainingOutputs) {
  // (Y, running mean, running var, batch mean, batch var): ONNX infers the type of Y only.
  for (DType dtype : {DType::Float, DType::Float16}) {
    const auto [rtol, atol] = dnn_tolerance(dtype);
    const Shape x = {4, 3, 3, 5};
    const std::vector<Tensor> inputs = batch_norm_inputs(x, dtype, dtype);
    std::vector<std::pair<DType, Shape>> outputs(5, {dtype, {x[1]}});
    outputs[0].second = x;
    expect_matches_cpu(declared_op_model("BatchNormalization", inputs, outputs,
                                         batch_norm_attrs(0, 0.7f), true, 9),
                       declared_op_feeds(inputs), rtol, atol);
  }
}

// BatchNormGrad (dY, X, Scale) over every axis but 1, the outputs `wanted` names.
void expect_batch_norm_grad(const Shape& x, DType dtype,
                            const std::vector<bool>& wanted = {true, true, true}) {
  SCOPED_TRACE("BatchNormGrad x " + shape_to_string(x) + " " + dtype_name(dtype));
  const std::vector<Tensor> inputs = {random_tensor(dtype, x, -1, 1, 31),
                                      random_tensor(dtype, x, -2, 3, 32),
                                      random_tensor(dtype, {x[1]}, 0.5, 1.5, 33)};
  std::vector<std::pair<DType, Shape>> outputs = {{dtype, x}, {dtype, {x[1]}}, {dtype, {x[1]}}};
  for (size_t k = 0; k < outputs.size(); ++k)
    if (!wanted[k]) outputs[k].first = DType::Undefined;
  Shape axes = {0};
  for (int64_t a = 2; a < static_cast<int64_t>(x.size()); ++a) axes.push_back(a);
  const ir::Model model =
      declared_op_model("BatchNormGrad", inputs, outputs, [&](onnx::NodeProto& n) {
        set_attr(n, "axes", axes);
        set_attr(n, "epsilon", 1e-3f);
      });
  const auto [rtol, atol] = dnn_tolerance(dtype);
  expect_matches_cpu(model, declared_op_feeds(inputs), rtol, atol);
}

TEST(CudaHostBatchNormGrad, MatchesCpu) {
  for (DType dtype : kDtypes) {
    expect_batch_norm_grad({4, 3, 5, 6}, dtype);
    expect_batch_norm_grad({6, 4}, dtype);
    expect_batch_norm_grad({2, 3, 3, 4, 2}, dtype);
  }
}

TEST(CudaHostBatchNormGrad, OnlyTheNamedOutputs) {
  expect_batch_norm_grad({3, 2, 4, 4}, DType::Float, {true, false, false});
  expect_batch_norm_grad({3, 2, 4, 4}, DType::Float16, {false, true, true});
}

}  // namespace
}  // namespace graft::test_util
