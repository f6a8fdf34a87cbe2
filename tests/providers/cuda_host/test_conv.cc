// The CUDA provider's Conv, ConvTranspose and com.graft ConvGrad (providers/cuda/kernels/conv.h)
// on the host backend, against the CPU provider: 1-D, 2-D and 3-D windows, groups (depthwise
// too), strides, dilations, every auto_pad, pads whose begin and end differ (padded explicitly
// before the library call), ConvTranspose's output_padding and output_shape, and the gradients.
// The host backend refuses what cuDNN refuses, so every case also checks the descriptors.
#include <gtest/gtest.h>

#include "providers/cuda/kernels/conv.h"
#include "tests/providers/cuda_host/dnn_cases.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_conv<HostBackend>);

const DType kDtypes[] = {DType::Float, DType::Float16, DType::BFloat16, DType::Double};

struct Window {
  Shape strides, pads, dilations;
  std::string auto_pad;
  int64_t group = 1;
};

std::function<void(onnx::NodeProto&)> window_attrs(const Window& w) {
  return [w](onnx::NodeProto& n) {
    if (!w.strides.empty()) set_attr(n, "strides", w.strides);
    if (!w.pads.empty()) set_attr(n, "pads", w.pads);
    if (!w.dilations.empty()) set_attr(n, "dilations", w.dilations);
    if (!w.auto_pad.empty()) set_attr(n, "auto_pad", w.auto_pad);
    if (w.group != 1) set_attr(n, "group", w.group);
  };
}

// Conv of x with w (and a bias when `bias`) in `dtype`.
void expect_conv(const Shape& x, const Shape& w, const Window& win, DType dtype = DType::Float,
                 bool bias = true) {
  SCOPED_TRACE("Conv x " + shape_to_string(x) + " w " + shape_to_string(w) + " " +
               dtype_name(dtype));
  std::vector<Tensor> inputs = {random_tensor(dtype, x, -1, 1, 1),
                                random_tensor(dtype, w, -0.5, 0.5, 2)};
  if (bias) inputs.push_back(random_tensor(dtype, {w[0]}, -1, 1, 3));
  const auto [rtol, atol] = dnn_tolerance(dtype);
  expect_op_matches_cpu({"Conv", inputs, 1, 18, window_attrs(win)}, rtol, atol);
}

TEST(CudaHostConv, OneTwoAndThreeSpatialDims) {
  for (DType dtype : kDtypes) {
    expect_conv({2, 3, 11}, {4, 3, 3}, {{2}, {1, 1}, {}, ""}, dtype);
    expect_conv({2, 4, 9, 8}, {6, 4, 3, 3}, {{1, 1}, {1, 1, 1, 1}, {}, ""}, dtype);
    expect_conv({1, 2, 5, 6, 7}, {3, 2, 2, 3, 3}, {{1, 2, 1}, {0, 1, 1, 0, 1, 1}, {}, ""}, dtype);
  }
  expect_conv({2, 3, 7, 6}, {5, 3, 1, 1}, {}, DType::Float, false);
}

TEST(CudaHostConv, GroupsAndDepthwise) {
  for (DType dtype : kDtypes) {
    expect_conv({2, 4, 7, 7}, {6, 2, 3, 3}, {{1, 1}, {1, 1, 1, 1}, {}, "", 2}, dtype);
    expect_conv({2, 4, 7, 7}, {4, 1, 3, 3}, {{1, 1}, {1, 1, 1, 1}, {}, "", 4}, dtype);
  }
  // Depthwise with a channel multiplier of 2, strided.
  expect_conv({1, 3, 9, 9}, {6, 1, 3, 3}, {{2, 2}, {1, 1, 1, 1}, {}, "", 3});
  expect_conv({2, 6, 12}, {9, 2, 5}, {{1}, {2, 2}, {}, "", 3});
}

TEST(CudaHostConv, StridesAndDilations) {
  for (DType dtype : kDtypes) {
    expect_conv({1, 3, 13, 12}, {4, 3, 3, 3}, {{2, 3}, {0, 0, 0, 0}, {2, 1}, ""}, dtype);
  }
  expect_conv({2, 2, 17}, {3, 2, 4}, {{3}, {2, 2}, {3}, ""});
  expect_conv({1, 2, 7, 8, 9}, {2, 2, 3, 2, 3}, {{2, 1, 2}, {1, 1, 1, 1, 1, 1}, {1, 2, 2}, ""});
}

TEST(CudaHostConv, EveryAutoPad) {
  for (const char* auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}) {
    SCOPED_TRACE(auto_pad);
    for (DType dtype : {DType::Float, DType::Float16}) {
      // An even kernel under SAME pads one side more than the other.
      expect_conv({2, 3, 10, 9}, {4, 3, 4, 3}, {{2, 2}, {}, {}, auto_pad}, dtype);
      expect_conv({1, 2, 11}, {3, 2, 3}, {{3}, {}, {2}, auto_pad}, dtype);
    }
    expect_conv({1, 2, 5, 6, 6}, {2, 2, 2, 3, 2}, {{1, 2, 2}, {}, {}, auto_pad});
  }
}

TEST(CudaHostConv, AsymmetricPads) {
  for (DType dtype : kDtypes) {
    expect_conv({2, 3, 8, 9}, {4, 3, 3, 3}, {{1, 1}, {0, 2, 1, 0}, {}, ""}, dtype);
    expect_conv({1, 4, 10}, {4, 2, 3}, {{2}, {3, 0}, {2}, "", 2}, dtype);
  }
  expect_conv({1, 2, 4, 5, 6}, {2, 2, 2, 2, 2}, {{1, 1, 1}, {1, 0, 2, 0, 1, 1}, {}, ""});
}

TEST(CudaHostConv, WeightsAsInitializers) {
  expect_op_matches_cpu(
      {"Conv",
       {random_tensor(DType::Float, {2, 3, 6, 6}), random_tensor(DType::Float, {4, 3, 3, 3}),
        random_tensor(DType::Float, {4})},
       1,
       18,
       window_attrs({{1, 1}, {1, 1, 1, 1}, {}, ""}),
       {1, 2}},
      1e-5, 1e-5);
}

// ConvTranspose of x with w (C, M / group, k...), plus `extra` attributes.
void expect_conv_transpose(const Shape& x, const Shape& w, const Window& win,
                           const std::function<void(onnx::NodeProto&)>& extra = nullptr,
                           DType dtype = DType::Float, bool bias = true) {
  SCOPED_TRACE("ConvTranspose x " + shape_to_string(x) + " w " + shape_to_string(w) + " " +
               dtype_name(dtype));
  std::vector<Tensor> inputs = {random_tensor(dtype, x, -1, 1, 4),
                                random_tensor(dtype, w, -0.5, 0.5, 5)};
  if (bias) inputs.push_back(random_tensor(dtype, {w[1] * win.group}, -1, 1, 6));
  const auto attrs = window_attrs(win);
  const auto [rtol, atol] = dnn_tolerance(dtype);
  expect_op_matches_cpu({"ConvTranspose", inputs, 1, 18,
                         [&](onnx::NodeProto& n) {
                           attrs(n);
                           if (extra) extra(n);
                         }},
                        rtol, atol);
}

std::function<void(onnx::NodeProto&)> ints_attr(const char* name, Shape values) {
  return [name, values](onnx::NodeProto& n) { set_attr(n, name, values); };
}

TEST(CudaHostConvTranspose, StridesPadsAndOutputPadding) {
  for (DType dtype : kDtypes) {
    expect_conv_transpose({2, 3, 5, 4}, {3, 4, 3, 3}, {{2, 2}, {1, 1, 1, 1}, {}, ""},
                          ints_attr("output_padding", {1, 0}), dtype);
    expect_conv_transpose({1, 2, 6}, {2, 3, 4}, {{3}, {1, 1}, {2}, ""},
                          ints_attr("output_padding", {2}), dtype);
  }
  expect_conv_transpose({1, 2, 3, 4, 3}, {2, 2, 3, 2, 3}, {{2, 1, 2}, {1, 0, 1, 1, 0, 1}, {}, ""},
                        ints_attr("output_padding", {1, 0, 0}));
  expect_conv_transpose({2, 3, 4, 4}, {3, 2, 2, 2}, {{2, 2}, {}, {}, ""}, nullptr, DType::Float,
                        false);
}

TEST(CudaHostConvTranspose, GroupsAndDilations) {
  for (DType dtype : {DType::Float, DType::BFloat16}) {
    expect_conv_transpose({2, 4, 5, 5}, {4, 3, 3, 3}, {{2, 1}, {1, 1, 1, 1}, {2, 2}, "", 2},
                          nullptr, dtype);
    expect_conv_transpose({1, 3, 6, 5}, {3, 1, 3, 3}, {{1, 2}, {0, 0, 0, 0}, {1, 1}, "", 3},
                          nullptr, dtype);
  }
}

TEST(CudaHostConvTranspose, AsymmetricPadsAndAutoPad) {
  for (DType dtype : {DType::Float, DType::Float16}) {
    expect_conv_transpose({1, 2, 4, 5}, {2, 3, 3, 3}, {{2, 2}, {0, 2, 1, 0}, {}, ""}, nullptr,
                          dtype);
    for (const char* auto_pad : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
      SCOPED_TRACE(auto_pad);
      expect_conv_transpose({2, 2, 4, 3}, {2, 2, 4, 3}, {{2, 3}, {}, {}, auto_pad}, nullptr, dtype);
    }
  }
}

TEST(CudaHostConvTranspose, OutputShape) {
  // Within the full output, past it (only the bias there), and under SAME past it (negative pads).
  expect_conv_transpose({1, 2, 3, 3}, {2, 2, 3, 3}, {{2, 2}, {}, {}, ""},
                        ints_attr("output_shape", {6, 7}));
  expect_conv_transpose({1, 2, 3, 3}, {2, 2, 3, 3}, {{2, 2}, {}, {}, ""},
                        ints_attr("output_shape", {9, 8}));
  for (const char* auto_pad : {"SAME_UPPER", "SAME_LOWER"}) {
    SCOPED_TRACE(auto_pad);
    expect_conv_transpose({1, 1, 3, 3}, {1, 2, 3, 3}, {{2, 2}, {}, {}, auto_pad},
                          ints_attr("output_shape", {9, 6}));
  }
}

// ConvGrad (dY, X, W) of a 2-D float convolution without groups, against the CPU provider's
// (oneDNN's backward passes), the outputs the node names.
void expect_conv_grad(const Shape& x, const Shape& w, const Shape& strides, const Shape& pads,
                      const Shape& dilations,
                      const std::vector<bool>& wanted = {true, true, true}) {
  SCOPED_TRACE("ConvGrad x " + shape_to_string(x) + " w " + shape_to_string(w) + " pads " +
               shape_to_string(pads));
  Shape y = {x[0], w[0]};
  for (size_t i = 0; i < 2; ++i) {
    const int64_t window = (w[2 + i] - 1) * dilations[i] + 1;
    y.push_back((x[2 + i] + pads[i] + pads[2 + i] - window) / strides[i] + 1);
  }
  const std::vector<Tensor> inputs = {random_tensor(DType::Float, y, -1, 1, 7),
                                      random_tensor(DType::Float, x, -1, 1, 8),
                                      random_tensor(DType::Float, w, -0.5, 0.5, 9)};
  std::vector<std::pair<DType, Shape>> outputs = {
      {DType::Float, x}, {DType::Float, w}, {DType::Float, {w[0]}}};
  for (size_t k = 0; k < outputs.size(); ++k)
    if (!wanted[k]) outputs[k].first = DType::Undefined;
  const ir::Model model = declared_op_model("ConvGrad", inputs, outputs, [&](onnx::NodeProto& n) {
    set_attr(n, "strides", strides);
    set_attr(n, "pads", pads);
    set_attr(n, "dilations", dilations);
  });
  expect_matches_cpu(model, declared_op_feeds(inputs), 1e-5, 1e-4);
}

TEST(CudaHostConvGrad, MatchesCpu) {
  expect_conv_grad({2, 3, 8, 8}, {4, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1});
  expect_conv_grad({2, 4, 9, 10}, {3, 4, 3, 2}, {2, 2}, {0, 0, 0, 0}, {1, 2});
  expect_conv_grad({1, 2, 7, 9}, {5, 2, 3, 3}, {2, 1}, {0, 2, 1, 1}, {1, 1});
  expect_conv_grad({3, 2, 6, 6}, {2, 2, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1});
}

TEST(CudaHostConvGrad, OnlyTheNamedOutputs) {
  expect_conv_grad({2, 3, 6, 7}, {2, 3, 3, 3}, {1, 2}, {1, 0, 1, 1}, {1, 1}, {true, false, false});
  expect_conv_grad({2, 3, 6, 7}, {2, 3, 3, 3}, {1, 2}, {1, 0, 1, 1}, {1, 1}, {false, true, false});
  expect_conv_grad({2, 3, 6, 7}, {2, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {false, false, true});
}

}  // namespace
}  // namespace graft::test_util
