// The CUDA provider's gather and scatter kernels (providers/cuda/kernels/gather.h), compiled for
// the host, against the CPU provider: exact for every dtype, int32 and int64 indices with
// negative ones, and every reduction (duplicate indices included, which the device combines in
// the CPU provider's order).
#include <gtest/gtest.h>

#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/gather.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_gather<HostBackend>);

const std::vector<DType> kTypes = {DType::Float,  DType::Int64, DType::Bool,    DType::Float16,
                                   DType::Double, DType::Int8,  DType::BFloat16};

Tensor data(DType dtype, const Shape& shape, uint64_t seed = 1) {
  return random_tensor(dtype, shape, -50, 50, seed);
}

// Indices in [-dim, dim) of `dtype` (int32 or int64).
Tensor indices(DType dtype, const Shape& shape, int64_t dim, uint64_t seed = 7) {
  return random_tensor(dtype, shape, static_cast<double>(-dim), static_cast<double>(dim), seed);
}

std::function<void(onnx::NodeProto&)> attrs(int64_t axis, const std::string& reduction = "") {
  return [axis, reduction](onnx::NodeProto& n) {
    set_attr(n, "axis", axis);
    if (!reduction.empty()) set_attr(n, "reduction", reduction);
  };
}

void expect_exact(const OpCase& c) { expect_op_matches_cpu(c, 0, 0); }

TEST(CudaHostGather, Gather) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"Gather", {data(dtype, {5, 4}), indices(DType::Int64, {3}, 5)}, 1, 18, attrs(0)});
    expect_exact(
        {"Gather", {data(dtype, {2, 6, 3}), indices(DType::Int32, {2, 4}, 6)}, 1, 18, attrs(1)});
    expect_exact(
        {"Gather", {data(dtype, {2, 3, 4}), tensor_of(DType::Int64, {}, {-1})}, 1, 18, attrs(-1)});
  }
  expect_exact(
      {"Gather", {data(DType::Float, {3, 2}), tensor_of(DType::Int64, {0}, {})}, 1, 18, attrs(0)});
}

TEST(CudaHostGather, GatherElements) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"GatherElements",
                  {data(dtype, {3, 4}), indices(DType::Int64, {3, 4}, 3)},
                  1,
                  18,
                  attrs(0)});
    expect_exact({"GatherElements",
                  {data(dtype, {3, 5, 2}), indices(DType::Int32, {2, 7, 1}, 5)},
                  1,
                  18,
                  attrs(1)});
    expect_exact({"GatherElements",
                  {data(dtype, {2, 3, 4}), indices(DType::Int64, {2, 3, 6}, 4)},
                  1,
                  18,
                  attrs(-1)});
  }
}

TEST(CudaHostGather, GatherND) {
  auto batch = [](int64_t b) { return [b](onnx::NodeProto& n) { set_attr(n, "batch_dims", b); }; };
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    // k = 1 and 2 with no batch dims, then one batch dim.
    expect_exact({"GatherND", {data(dtype, {4, 3, 2}), indices(DType::Int64, {5, 1}, 4)}});
    expect_exact({"GatherND", {data(dtype, {4, 3, 2}), indices(DType::Int64, {2, 3, 2}, 3)}});
    expect_exact({"GatherND",
                  {data(dtype, {2, 4, 3}), indices(DType::Int32, {2, 5, 2}, 3)},
                  1,
                  18,
                  batch(1)});
  }
}

TEST(CudaHostGather, ScatterElements) {
  // Distinct indices per line along the axis for reduction none (a permutation).
  const Tensor rows = tensor_of(DType::Int64, {2, 3}, {2, 0, -1, 0, -2, 1});
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"ScatterElements",
                  {data(dtype, {3, 3}, 1), rows, data(dtype, {2, 3}, 2)},
                  1,
                  18,
                  attrs(0)});
    expect_exact({"ScatterElements",
                  {data(dtype, {2, 4}, 1), tensor_of(DType::Int32, {2, 2}, {3, -4, 1, 2}),
                   data(dtype, {2, 2}, 2)},
                  1,
                  18,
                  attrs(-1)});
  }
  // Reductions, with duplicate indices.
  for (const char* reduction : {"add", "mul", "max", "min"}) {
    for (DType dtype : {DType::Float, DType::Int64, DType::Float16, DType::Bool, DType::Int32}) {
      SCOPED_TRACE(std::string(reduction) + " " + dtype_name(dtype));
      const double lo = dtype == DType::Bool ? 0 : -3, hi = 3;
      for (int64_t axis : {0, 1}) {
        expect_exact({"ScatterElements",
                      {random_tensor(dtype, {4, 5}, lo, hi, 1), indices(DType::Int64, {4, 5}, 4),
                       random_tensor(dtype, {4, 5}, lo, hi, 2)},
                      1,
                      18,
                      attrs(axis, reduction)});
      }
    }
  }
  // Scatter, the op's name before opset 11.
  expect_exact({"Scatter",
                {data(DType::Float, {3, 3}, 1), rows, data(DType::Float, {2, 3}, 2)},
                1,
                10,
                attrs(0)});
}

TEST(CudaHostGather, ScatterND) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    // Slices of rows, then single elements (k equal to the rank), all distinct.
    expect_exact({"ScatterND",
                  {data(dtype, {4, 3}, 1), tensor_of(DType::Int64, {2, 1}, {3, -4}),
                   data(dtype, {2, 3}, 2)}});
    expect_exact(
        {"ScatterND",
         {data(dtype, {2, 3, 2}, 1), tensor_of(DType::Int32, {3, 3}, {0, 1, 1, 1, -1, 0, 1, 0, 0}),
          data(dtype, {3}, 2)}});
  }
  for (const char* reduction : {"add", "mul", "max", "min"}) {
    for (DType dtype : {DType::Float, DType::Int64, DType::Float16, DType::Bool}) {
      SCOPED_TRACE(std::string(reduction) + " " + dtype_name(dtype));
      const double lo = dtype == DType::Bool ? 0 : -3, hi = 3;
      auto reduce = [&](onnx::NodeProto& n) { set_attr(n, "reduction", reduction); };
      expect_exact({"ScatterND",
                    {random_tensor(dtype, {4, 3}, lo, hi, 1), indices(DType::Int64, {7, 1}, 4),
                     random_tensor(dtype, {7, 3}, lo, hi, 2)},
                    1,
                    18,
                    reduce});
      expect_exact({"ScatterND",
                    {random_tensor(dtype, {3, 2}, lo, hi, 1), indices(DType::Int64, {9, 2}, 2),
                     random_tensor(dtype, {9}, lo, hi, 2)},
                    1,
                    18,
                    reduce});
    }
  }
}

}  // namespace
}  // namespace graft::test_util
