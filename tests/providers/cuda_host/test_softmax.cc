// The CUDA provider's Softmax, LogSoftmax and com.graft SoftmaxGrad
// (providers/cuda/kernels/softmax.h), compiled for the host, against the CPU provider: every
// axis (negative ones too) in both the opset-13 and the older coerced-2-D semantics, rows of 1, 33
// and 1025 elements, inputs that overflow exp unless shifted, and infinities. float32 within
// 1e-5, the 16-bit floats within 1e-2.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/serialize.h"
#include "onnx/defs/parser.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/softmax.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_softmax<HostBackend>);

const std::vector<DType> kFloats = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};

double tolerance(DType dtype) {
  return dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
}

OpCase softmax_case(const std::string& op, const Tensor& x, int64_t opset, int64_t axis) {
  return {op, {x}, 1, opset, [axis](onnx::NodeProto& n) { set_attr(n, "axis", axis); }};
}

TEST(CudaHostSoftmax, EveryAxisBothSemantics) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    for (DType dtype : kFloats) {
      const Tensor x = random_tensor(dtype, {3, 5, 7}, -4, 4, 1);
      for (int64_t opset : {11, 13}) {
        for (int64_t axis : {0, 1, 2, -1, -2, -3}) {
          SCOPED_TRACE(std::string(op) + " " + dtype_name(dtype) + " opset " +
                       std::to_string(opset) + " axis " + std::to_string(axis));
          expect_op_matches_cpu(softmax_case(op, x, opset, axis), tolerance(dtype), 1e-6);
        }
        // The default axis: 1 before opset 13, -1 from it.
        expect_op_matches_cpu({op, {x}, 1, opset}, tolerance(dtype), 1e-6);
      }
    }
  }
}

TEST(CudaHostSoftmax, OddRowLengths) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    for (const Shape& shape : std::vector<Shape>{{4, 1}, {2, 33}, {3, 1025}, {1025}, {1}}) {
      for (DType dtype : {DType::Float, DType::BFloat16}) {
        SCOPED_TRACE(std::string(op) + " " + shape_to_string(shape) + " " + dtype_name(dtype));
        expect_op_matches_cpu({op, {random_tensor(dtype, shape, -3, 3, 2)}, 1, 13},
                              tolerance(dtype), 1e-6);
      }
    }
    // Along a leading axis of 33 and 1025 elements, strided by the rest.
    expect_op_matches_cpu(softmax_case(op, random_tensor(DType::Float, {33, 4}, -3, 3, 3), 13, 0));
    expect_op_matches_cpu(
        softmax_case(op, random_tensor(DType::Float, {1025, 2}, -3, 3, 4), 13, 0));
  }
}

// exp of these overflows float; the max-shifted form does not. Rows with -inf entries, all -inf
// and +inf follow the CPU provider's results.
TEST(CudaHostSoftmax, LargeAndInfiniteInputs) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    expect_op_matches_cpu({op, {random_tensor(DType::Float, {4, 9}, 100, 1000, 5)}, 1, 13});
    expect_op_matches_cpu({op, {random_tensor(DType::Float16, {4, 9}, 100, 60000, 5)}, 1, 13}, 1e-2,
                          1e-6);
    const double inf = INFINITY;
    const Tensor x = tensor_of(DType::Float, {3, 3}, {1, -inf, 2, -inf, -inf, -inf, 0, inf, 1});
    expect_op_matches_cpu({op, {x}, 1, 13});
  }
}

// A model of one com.graft node from its ONNX text form (ONNX infers no types for graft's ops).
ir::Model parse_model(const std::string& text) {
  onnx::ModelProto m;
  const auto status = onnx::OnnxParser::Parse(m, text.c_str());
  if (!status.IsOK()) throw std::runtime_error(status.ErrorMessage());
  return ir::load_model_from_bytes(m.SerializeAsString());
}

std::string type_text(DType dtype, const Shape& shape) {
  std::string dims;
  for (int64_t d : shape) dims += (dims.empty() ? "" : ",") + std::to_string(d);
  return std::string(dtype_name(dtype)) + "[" + dims + "]";
}

void expect_softmax_grad_matches(DType dtype, const Shape& shape, int64_t axis) {
  const std::string t = type_text(dtype, shape);
  const ir::Model model = parse_model(
      "<ir_version: 10, opset_import: [\"\" : 18, \"com.graft\" : 1]>\n"
      "g (" +
      t + " dy, " + t + " y) => (" + t +
      " dx) {\n"
      "  dx = com.graft.SoftmaxGrad <axis = " +
      std::to_string(axis) + "> (dy, y)\n}");
  expect_matches_cpu(model,
                     {{"dy", Value(random_tensor(dtype, shape, -2, 2, 6))},
                      {"y", Value(random_tensor(dtype, shape, 0, 1, 7))}},
                     tolerance(dtype), 1e-6);
}

TEST(CudaHostSoftmax, SoftmaxGrad) {
  for (DType dtype : kFloats) {
    for (int64_t axis : {0, 1, 2, -1, -2}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " axis " + std::to_string(axis));
      expect_softmax_grad_matches(dtype, {3, 5, 7}, axis);
    }
  }
  for (const Shape& shape : std::vector<Shape>{{2, 1}, {3, 33}, {2, 1025}}) {
    SCOPED_TRACE(shape_to_string(shape));
    expect_softmax_grad_matches(DType::Float, shape, -1);
  }
}

}  // namespace
}  // namespace graft::test_util
