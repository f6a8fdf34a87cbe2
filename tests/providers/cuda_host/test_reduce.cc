// The CUDA provider's reductions (providers/cuda/kernels/reduce.h), compiled for the host, against
// the CPU provider: every Reduce* op over every kind of axis set (leading, trailing, inner, split,
// negative, all, none), with and without keepdims, axes as an attribute (old opsets) and as an
// input; ArgMax and ArgMin with ties and NaN. float32 within 1e-5, the 16-bit floats within 1e-2,
// integers exactly.
#include <gtest/gtest.h>

#include <cmath>

#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/reduce.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_reduce<HostBackend>);

const std::vector<DType> kFloats = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};

double tolerance(DType dtype) {
  return dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
}

// Inputs each op is defined and well conditioned on: positive for the logarithms, near 1 for the
// product.
std::pair<double, double> input_range(const std::string& op) {
  if (op == "ReduceLogSum") return {0.1, 2};
  if (op == "ReduceProd") return {0.8, 1.25};
  return {-2, 2};
}

// `op` at opset 18 (axes as input 1, given as an initializer unless `fed`) over `axes`; an empty
// `axes` leaves the input out.
OpCase reduce_case(const std::string& op, const Tensor& x, const std::vector<int64_t>& axes,
                   int64_t keepdims, bool fed = false, int64_t noop = 0) {
  OpCase c{op, {x}, 1, 18, [keepdims, noop](onnx::NodeProto& n) {
             set_attr(n, "keepdims", keepdims);
             if (noop) set_attr(n, "noop_with_empty_axes", noop);
           }};
  if (!axes.empty()) {
    std::vector<double> values(axes.begin(), axes.end());
    c.inputs.push_back(tensor_of(DType::Int64, {static_cast<int64_t>(axes.size())}, values));
    if (!fed) c.constant_inputs = {1};
  }
  return c;
}

const std::vector<std::string> kFloatOps = {
    "ReduceSum", "ReduceMean", "ReduceMax",       "ReduceMin",    "ReduceProd",
    "ReduceL1",  "ReduceL2",   "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};

TEST(CudaHostReduce, EveryOpOverEveryKindOfAxes) {
  const std::vector<std::vector<int64_t>> axes_sets = {{},     {0},     {1},    {2},       {-1},
                                                       {0, 2}, {-3, 1}, {1, 2}, {0, 1, 2}, {2, 0}};
  for (const std::string& op : kFloatOps) {
    const auto [lo, hi] = input_range(op);
    for (DType dtype : kFloats) {
      const Tensor x = random_tensor(dtype, {3, 5, 7}, lo, hi, 7);
      for (const auto& axes : axes_sets) {
        for (int64_t keepdims : {0, 1}) {
          SCOPED_TRACE(op + " " + dtype_name(dtype) + " axes " + shape_to_string(axes) +
                       " keepdims " + std::to_string(keepdims));
          expect_op_matches_cpu(reduce_case(op, x, axes, keepdims), tolerance(dtype), 1e-5);
        }
      }
    }
  }
}

// Rows and columns of 1, 33 and 1025 elements, reduced along and across memory.
TEST(CudaHostReduce, OddSizes) {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{4, 1025}, {1}}, {{1025, 3}, {0}}, {{2, 33, 5}, {1}},    {{7, 1}, {1}},
      {{1, 7}, {0}},    {{1}, {0}},       {{33, 1, 2}, {0, 2}}, {{3, 0, 2}, {1}}};
  for (const std::string& op : kFloatOps) {
    // Positive inputs: sums of a thousand terms then differ from the CPU's only by rounding.
    const double lo = op == "ReduceProd" ? 0.99 : 0.1, hi = op == "ReduceProd" ? 1.01 : 1.0;
    for (const auto& [shape, axes] : cases) {
      for (DType dtype : {DType::Float, DType::Float16}) {
        SCOPED_TRACE(op + " " + dtype_name(dtype) + " " + shape_to_string(shape));
        expect_op_matches_cpu(reduce_case(op, random_tensor(dtype, shape, lo, hi, 3), axes, 0),
                              tolerance(dtype), 1e-5);
      }
    }
  }
}

TEST(CudaHostReduce, AxesFedAtRunTime) {
  const Tensor x = random_tensor(DType::Float, {4, 6, 5}, -1, 1, 5);
  for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{-2}, {0, 2}}) {
    expect_op_matches_cpu(reduce_case("ReduceSum", x, axes, 1, /*fed=*/true));
    expect_op_matches_cpu(reduce_case("ReduceMax", x, axes, 0, /*fed=*/true));
  }
}

// Opsets before 18 (ReduceSum: 13) name the axes in an attribute.
TEST(CudaHostReduce, AxesAsAttribute) {
  const Tensor x = random_tensor(DType::Float, {3, 4, 5}, 0.1, 2, 9);
  for (const std::string& op : kFloatOps) {
    for (const std::vector<int64_t>& axes :
         std::vector<std::vector<int64_t>>{{}, {1}, {-1, 0}, {0, 1, 2}}) {
      for (int64_t keepdims : {0, 1}) {
        SCOPED_TRACE(op + " axes " + shape_to_string(axes));
        expect_op_matches_cpu({op, {x}, 1, 11, [&](onnx::NodeProto& n) {
                                 if (!axes.empty()) set_attr(n, "axes", axes);
                                 set_attr(n, "keepdims", keepdims);
                               }});
      }
    }
  }
}

// Empty axes reduce everything, unless noop_with_empty_axes: then the identity reductions hand
// the input on and the others apply their element transform alone.
TEST(CudaHostReduce, EmptyAxes) {
  const Tensor x = random_tensor(DType::Float, {3, 4}, 0.1, 2, 11);
  const Tensor none = tensor_of(DType::Int64, {0}, {});
  for (const std::string& op : kFloatOps) {
    for (int64_t noop : {0, 1}) {
      SCOPED_TRACE(op + " noop_with_empty_axes " + std::to_string(noop));
      expect_op_matches_cpu(reduce_case(op, x, {}, 1, false, noop));
      OpCase given_empty = reduce_case(op, x, {}, 0, false, noop);
      given_empty.inputs.push_back(none);
      expect_op_matches_cpu(given_empty);
    }
  }
  expect_op_matches_cpu(reduce_case("ReduceSum", random_tensor(DType::Float, {}, -1, 1), {}, 0));
}

TEST(CudaHostReduce, Integers) {
  const std::vector<std::string> ops = {"ReduceSum",  "ReduceMean", "ReduceMax", "ReduceMin",
                                        "ReduceProd", "ReduceL1",   "ReduceL2",  "ReduceSumSquare"};
  for (const std::string& op : ops) {
    for (DType dtype : {DType::Int32, DType::Int64, DType::UInt32, DType::UInt64}) {
      const bool is_unsigned = dtype == DType::UInt32 || dtype == DType::UInt64;
      const Tensor x = random_tensor(dtype, {4, 9, 3}, is_unsigned ? 0 : -9, 9, 13);
      for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{1}, {0, 2}, {}}) {
        SCOPED_TRACE(op + " " + dtype_name(dtype) + " axes " + shape_to_string(axes));
        expect_op_matches_cpu(reduce_case(op, x, axes, 0));
      }
    }
  }
  // Sums wrap as fixed-width integers do.
  const Tensor big = tensor_of(DType::Int32, {3}, {2e9, 2e9, -5});
  expect_op_matches_cpu(reduce_case("ReduceSum", big, {0}, 0));
  expect_op_matches_cpu(reduce_case("ReduceSumSquare", big, {0}, 0));
  for (const char* op : {"ReduceMax", "ReduceMin"}) {
    for (DType dtype : {DType::Int8, DType::UInt8, DType::Bool}) {
      SCOPED_TRACE(std::string(op) + " " + dtype_name(dtype));
      const Tensor x = random_tensor(dtype, {5, 6}, dtype == DType::Int8 ? -100 : 0,
                                     dtype == DType::Bool ? 1 : 100, 17);
      expect_op_matches_cpu(reduce_case(op, x, {1}, 1));
      expect_op_matches_cpu(reduce_case(op, x, {}, 0));
    }
  }
}

// NaN wins a max or min and makes a LogSumExp NaN; infinities and huge values stay exact.
TEST(CudaHostReduce, NonFiniteAndLargeValues) {
  const double inf = INFINITY, nan = NAN;
  const Tensor x = tensor_of(DType::Float, {5, 3},
                             {1, nan, 3, -inf, -inf, -inf, inf, 2, -inf, 500, 800, 700, -2, -1, 0});
  for (const char* op : {"ReduceMax", "ReduceMin", "ReduceLogSumExp", "ReduceSum"}) {
    SCOPED_TRACE(op);
    expect_op_matches_cpu(reduce_case(op, x, {1}, 0));
  }
}

TEST(CudaHostReduce, ArgMaxArgMin) {
  for (const char* op : {"ArgMax", "ArgMin"}) {
    for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16, DType::Int32,
                        DType::Int64, DType::UInt8, DType::Int8}) {
      // Few distinct values, so most rows hold ties.
      const Tensor x = random_tensor(dtype, {4, 33, 3}, 0, 4, 19);
      for (int64_t axis : {0, 1, 2, -1, -3}) {
        for (int64_t keepdims : {0, 1}) {
          for (int64_t last : {0, 1}) {
            SCOPED_TRACE(std::string(op) + " " + dtype_name(dtype) + " axis " +
                         std::to_string(axis) + " keepdims " + std::to_string(keepdims) +
                         " select_last_index " + std::to_string(last));
            expect_op_matches_cpu({op, {x}, 1, 13, [&](onnx::NodeProto& n) {
                                     set_attr(n, "axis", axis);
                                     set_attr(n, "keepdims", keepdims);
                                     set_attr(n, "select_last_index", last);
                                   }});
          }
        }
      }
    }
  }
  const double nan = NAN;
  const Tensor with_nan = tensor_of(DType::Float, {3, 4}, {1, nan, 3, nan, 2, 2, 1, 0, 5, 5, 5, 5});
  for (const char* op : {"ArgMax", "ArgMin"}) {
    for (int64_t last : {0, 1}) {
      expect_op_matches_cpu({op, {with_nan}, 1, 13, [&](onnx::NodeProto& n) {
                               set_attr(n, "axis", int64_t{1});
                               set_attr(n, "select_last_index", last);
                             }});
    }
  }
  expect_op_matches_cpu({"ArgMax", {random_tensor(DType::Float, {1025}, -1, 1, 23)}});
}

}  // namespace
}  // namespace graft::test_util
