// The CUDA provider's LayerNormalization and com.graft LayerNormGrad
// (providers/cuda/kernels/normalization.h), compiled for the host, against the CPU provider: every
// axis, broadcast and missing Scale and B, the Mean and InvStdDev outputs in each stash type, rows
// of 1, 33 and 1025 elements, and inputs far from zero (the variance must not cancel). float32
// within 1e-5, the 16-bit floats within 1e-2.
#include <gtest/gtest.h>

#include "ir/serialize.h"
#include "onnx/defs/parser.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/normalization.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_normalization<HostBackend>);

const std::vector<DType> kFloats = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};

double tolerance(DType dtype) {
  return dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
}

Shape tail(const Shape& shape, int64_t axis) {
  if (axis < 0) axis += static_cast<int64_t>(shape.size());
  return Shape(shape.begin() + axis, shape.end());
}

// LayerNormalization of x with `scale` and `bias` (undefined: left out), all three outputs unless
// `only_y`.
OpCase layer_norm_case(const Tensor& x, const Tensor& scale, const Tensor& bias, int64_t axis,
                       int64_t stash_type = 1, bool only_y = false, float epsilon = 1e-5f) {
  std::vector<Tensor> inputs = {x, scale};
  if (bias.defined()) inputs.push_back(bias);
  return {"LayerNormalization", inputs, only_y ? 1 : 3, 17, [=](onnx::NodeProto& n) {
            set_attr(n, "axis", axis);
            set_attr(n, "stash_type", stash_type);
            set_attr(n, "epsilon", epsilon);
          }};
}

TEST(CudaHostLayerNorm, EveryAxisAndType) {
  const Shape shape = {2, 3, 33};
  for (DType dtype : kFloats) {
    const Tensor x = random_tensor(dtype, shape, -2, 3, 1);
    for (int64_t axis : {-1, -2, 0, 1, 2}) {
      const Shape norm = tail(shape, axis);
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " axis " + std::to_string(axis) +
                     (with_bias ? " with B" : ""));
        const Tensor scale = random_tensor(dtype, norm, 0.5, 2, 2);
        const Tensor bias = with_bias ? random_tensor(dtype, norm, -1, 1, 3) : Tensor();
        expect_op_matches_cpu(layer_norm_case(x, scale, bias, axis), tolerance(dtype), 1e-5);
      }
    }
    SCOPED_TRACE(std::string(dtype_name(dtype)) + " bfloat16 statistics");
    expect_op_matches_cpu(layer_norm_case(x, random_tensor(dtype, {33}, 0.5, 2, 2), Tensor(), -1,
                                          static_cast<int64_t>(DType::BFloat16)),
                          1e-2, 1e-5);
  }
}

// Scale and B broadcast over the normalized dims (here [3, 33]).
TEST(CudaHostLayerNorm, BroadcastParameters) {
  const Tensor x = random_tensor(DType::Float, {4, 3, 33}, -1, 1, 4);
  for (const auto& [scale_shape, bias_shape] :
       std::vector<std::pair<Shape, Shape>>{{{33}, {3, 1}}, {{1, 33}, {1}}, {{3, 1}, {33}}}) {
    SCOPED_TRACE(shape_to_string(scale_shape) + " " + shape_to_string(bias_shape));
    expect_op_matches_cpu(layer_norm_case(x, random_tensor(DType::Float, scale_shape, 0.5, 2, 5),
                                          random_tensor(DType::Float, bias_shape, -1, 1, 6), 1));
  }
}

TEST(CudaHostLayerNorm, OddSizesAndOnlyY) {
  for (const Shape& shape : std::vector<Shape>{{4, 1025}, {5, 1}, {1, 7}, {33, 33}, {0, 4}}) {
    for (bool only_y : {false, true}) {
      SCOPED_TRACE(shape_to_string(shape));
      expect_op_matches_cpu(layer_norm_case(random_tensor(DType::Float, shape, -1, 1, 7),
                                            random_tensor(DType::Float, {shape[1]}, 0.5, 2, 8),
                                            random_tensor(DType::Float, {shape[1]}, -1, 1, 9), -1,
                                            1, only_y, 1e-3f));
    }
  }
}

// Values near 1000 with a spread of 1: in float, a sum of squares less the squared mean would
// lose the variance (1/3) in the rounding of terms near 1e6; the merged deviations keep it. The
// float result still differs from the CPU's (double statistics) by the rounding of x - mean at
// 1000, a few 6e-5 quanta times inv_std * Scale (up to 4). Double inputs agree to their own
// precision.
TEST(CudaHostLayerNorm, FarFromZero) {
  const Tensor x = random_tensor(DType::Float, {3, 1025}, 999, 1001, 10);
  const Tensor scale = random_tensor(DType::Float, {1025}, 0.5, 2, 11);
  expect_op_matches_cpu(layer_norm_case(x, scale, Tensor(), -1), 1e-5, 1e-3);
  const Tensor xd = random_tensor(DType::Double, {3, 1025}, 999, 1001, 10);
  expect_op_matches_cpu(
      layer_norm_case(xd, random_tensor(DType::Double, {1025}, 0.5, 2, 11), Tensor(), -1), 1e-9,
      1e-9);
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

// LayerNormGrad(dY, X, Scale) over the trailing `axes`, with the first `outputs` of dX, dScale
// and dB.
void expect_layer_norm_grad_matches(DType dtype, const Shape& shape,
                                    const std::vector<int64_t>& axes, const Shape& scale_shape,
                                    int outputs, double atol = 1e-5) {
  const std::string t = type_text(dtype, shape), s = type_text(dtype, scale_shape);
  std::string axes_text, declared = t + " dx", names = "dx";
  for (int64_t a : axes) axes_text += (axes_text.empty() ? "" : ", ") + std::to_string(a);
  if (outputs > 1) declared += ", " + s + " dscale", names += ", dscale";
  if (outputs > 2) declared += ", " + s + " db", names += ", db";
  const ir::Model model = parse_model(
      "<ir_version: 10, opset_import: [\"\" : 18, \"com.graft\" : 1]>\n"
      "g (" +
      t + " dy, " + t + " x, " + s + " scale) => (" + declared + ") {\n  " + names +
      " = com.graft.LayerNormGrad <axes = [" + axes_text + "], epsilon = 0.001> (dy, x, scale)\n}");
  expect_matches_cpu(model,
                     {{"dy", Value(random_tensor(dtype, shape, -1, 1, 12))},
                      {"x", Value(random_tensor(dtype, shape, -2, 3, 13))},
                      {"scale", Value(random_tensor(dtype, scale_shape, 0.5, 2, 14))}},
                     tolerance(dtype), atol);
}

TEST(CudaHostLayerNormGrad, EveryAxesAndType) {
  for (DType dtype : kFloats) {
    for (const std::vector<int64_t>& axes :
         std::vector<std::vector<int64_t>>{{-1}, {2}, {1, 2}, {-2, -1}, {0, 1, 2}}) {
      for (int outputs : {1, 2, 3}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " axes " + shape_to_string(axes) + " " +
                     std::to_string(outputs) + " outputs");
        const Shape shape = {3, 4, 5};
        Shape scale_shape;
        for (int64_t a : axes) scale_shape.push_back(shape[static_cast<size_t>(a < 0 ? a + 3 : a)]);
        expect_layer_norm_grad_matches(dtype, shape, axes, scale_shape, outputs);
      }
    }
  }
}

TEST(CudaHostLayerNormGrad, OddSizesAndScalarScale) {
  for (const Shape& shape : std::vector<Shape>{{4, 1025}, {5, 1}, {1, 33}, {1025, 3}}) {
    SCOPED_TRACE(shape_to_string(shape));
    // Among 1025 rows of three values some have a variance near epsilon, where inv_std (up to
    // 30) magnifies float rounding: there the CPU's float result is itself 2e-5 from a double
    // computation (this kernel's, 3e-6).
    const double atol = shape[1] == 3 ? 1e-4 : 1e-5;
    expect_layer_norm_grad_matches(DType::Float, shape, {-1}, {shape[1]}, 3, atol);
  }
  expect_layer_norm_grad_matches(DType::Float, {6, 7}, {1}, {1}, 1);
}

}  // namespace
}  // namespace graft::test_util
