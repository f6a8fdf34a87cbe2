// The CUDA provider's elementwise kernels (providers/cuda/kernels/elementwise.h), compiled for the
// host, against the CPU provider: every op, float32 within 1e-5, the 16-bit floats and integers
// as the CPU provider computes them.
#include <gtest/gtest.h>

#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/elementwise.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_elementwise<HostBackend>);

TEST(CudaHostElementwise, UnaryFloatOps) {
  for (const char* op : {"Exp", "Tanh", "Sigmoid", "Erf", "Floor", "Ceil", "Sin", "Cos", "Softplus",
                         "LeakyRelu", "Elu", "Relu", "Neg", "Abs"}) {
    for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16}) {
      SCOPED_TRACE(dtype_name(dtype));
      const double tol = dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
      expect_op_matches_cpu({op, {random_tensor(dtype, {3, 5, 7}, -4, 4)}}, tol, 1e-6);
    }
  }
  for (const char* op : {"Log", "Sqrt", "Reciprocal"}) {
    expect_op_matches_cpu({op, {random_tensor(DType::Float, {64}, 0.1, 5)}});
  }
  expect_op_matches_cpu(
      {"LeakyRelu", {random_tensor(DType::Float, {10}, -2, 2)}, 1, 18, [](onnx::NodeProto& n) {
         set_attr(n, "alpha", 0.3f);
       }});
  for (const char* approximate : {"none", "tanh"}) {
    expect_op_matches_cpu(
        {"Gelu", {random_tensor(DType::Float, {33}, -3, 3)}, 1, 20, [&](onnx::NodeProto& n) {
           set_attr(n, "approximate", approximate);
         }});
  }
}

TEST(CudaHostElementwise, IntegerUnaryAndNot) {
  for (const char* op : {"Relu", "Neg", "Abs"}) {
    for (DType dtype : {DType::Int32, DType::Int64, DType::Int8}) {
      expect_op_matches_cpu({op, {random_tensor(dtype, {4, 6}, -50, 50)}});
    }
  }
  expect_op_matches_cpu({"Not", {random_tensor(DType::Bool, {17})}});
}

TEST(CudaHostElementwise, BinaryOpsBroadcast) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}}, {{2, 1, 4}, {3, 1}}, {{1}, {5, 2}}, {{}, {3}}};
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const auto& [a, b] : shapes) {
      for (DType dtype : {DType::Float, DType::Float16, DType::BFloat16, DType::Double}) {
        const double tol = dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
        expect_op_matches_cpu(
            {op, {random_tensor(dtype, a, -3, 3, 1), random_tensor(dtype, b, 0.5, 3, 2)}}, tol,
            1e-6);
      }
      expect_op_matches_cpu(
          {op,
           {random_tensor(DType::Int64, a, -20, 20, 1), random_tensor(DType::Int64, b, 1, 9, 2)}});
      expect_op_matches_cpu(
          {op,
           {random_tensor(DType::Int32, a, -20, 20, 1), random_tensor(DType::Int32, b, 1, 9, 2)}});
    }
  }
  for (const char* op : {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}) {
    expect_op_matches_cpu({op,
                           {random_tensor(DType::Int64, {3, 4}, 0, 3, 1),
                            random_tensor(DType::Int64, {4}, 0, 3, 2)}});
    expect_op_matches_cpu({op,
                           {random_tensor(DType::Float, {3, 4}, 0, 2, 1),
                            random_tensor(DType::Float, {3, 1}, 0, 2, 2)}});
  }
  for (const char* op : {"And", "Or", "Xor", "Equal"}) {
    expect_op_matches_cpu(
        {op,
         {random_tensor(DType::Bool, {3, 4}, 0, 1, 1), random_tensor(DType::Bool, {4}, 0, 1, 2)}});
  }
  expect_op_matches_cpu({"Pow",
                         {random_tensor(DType::Float, {3, 4}, 0.1, 3, 1),
                          random_tensor(DType::Float, {4}, -2, 2, 2)}});
  expect_op_matches_cpu(
      {"Pow", {random_tensor(DType::Float, {3, 4}, 0.1, 3, 1), tensor_of(DType::Int64, {}, {2})}});
}

TEST(CudaHostElementwise, VariadicWhereCast) {
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    expect_op_matches_cpu({op,
                           {random_tensor(DType::Float, {2, 3, 4}, -2, 2, 1),
                            random_tensor(DType::Float, {3, 1}, -2, 2, 2),
                            random_tensor(DType::Float, {4}, -2, 2, 3)}});
    expect_op_matches_cpu({op, {random_tensor(DType::Float, {5}, -2, 2, 4)}});
  }
  expect_op_matches_cpu(
      {"Max",
       {random_tensor(DType::Int64, {6}, -9, 9, 1), random_tensor(DType::Int64, {6}, -9, 9, 2)}});
  expect_op_matches_cpu(
      {"Where",
       {random_tensor(DType::Bool, {3, 1}, 0, 1, 1), random_tensor(DType::Float, {3, 4}, -2, 2, 2),
        random_tensor(DType::Float, {4}, -2, 2, 3)}});
  expect_op_matches_cpu(
      {"Where",
       {random_tensor(DType::Bool, {5}, 0, 1, 1), random_tensor(DType::Int64, {5}, -9, 9, 2),
        random_tensor(DType::Int64, {}, -9, 9, 3)}});
  const std::vector<DType> types = {DType::Float,    DType::Double, DType::Float16,
                                    DType::BFloat16, DType::Int8,   DType::Int32,
                                    DType::Int64,    DType::UInt8,  DType::Bool};
  for (DType from : types) {
    for (DType to : types) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      expect_op_matches_cpu(
          {"Cast", {random_tensor(from, {2, 9}, -100, 100)}, 1, 18, [&](onnx::NodeProto& n) {
             set_attr(n, "to", static_cast<int64_t>(to));
           }});
    }
  }
  expect_op_matches_cpu(
      {"CastLike", {random_tensor(DType::Float, {7}, -9, 9), random_tensor(DType::Float16, {1})}});
}

}  // namespace
}  // namespace graft::test_util
