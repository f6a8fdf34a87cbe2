// The CUDA provider's pooling (providers/cuda/kernels/pool.h) on the host backend, against the
// CPU provider: MaxPool with and without Indices (both storage orders), AveragePool with and
// without count_include_pad, ceil_mode, dilations, every auto_pad and pads whose begin and end
// differ, over 1 to 3 spatial dims; GlobalAveragePool and GlobalMaxPool; com.graft MaxPoolGrad.
// Windows the library takes run through the host backend's reference (which refuses the rest),
// the others through the kernels' own window loop.
#include <gtest/gtest.h>

#include <cmath>

#include "providers/cuda/kernels/pool.h"
#include "tests/providers/cuda_host/dnn_cases.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_pool<HostBackend>);

const DType kDtypes[] = {DType::Float, DType::Float16, DType::BFloat16, DType::Double};

struct Window {
  Shape kernel, strides, pads, dilations;
  std::string auto_pad;
  int64_t ceil_mode = 0;
};

std::function<void(onnx::NodeProto&)> window_attrs(const Window& w,
                                                   std::function<void(onnx::NodeProto&)> extra) {
  return [w, extra](onnx::NodeProto& n) {
    set_attr(n, "kernel_shape", w.kernel);
    if (!w.strides.empty()) set_attr(n, "strides", w.strides);
    if (!w.pads.empty()) set_attr(n, "pads", w.pads);
    if (!w.dilations.empty()) set_attr(n, "dilations", w.dilations);
    if (!w.auto_pad.empty()) set_attr(n, "auto_pad", w.auto_pad);
    if (w.ceil_mode) set_attr(n, "ceil_mode", w.ceil_mode);
    if (extra) extra(n);
  };
}

// `op` over x in `dtype`; `outputs` 2 asks MaxPool for Indices.
void expect_pool(const char* op, const Shape& x, const Window& win, DType dtype = DType::Float,
                 int outputs = 1, std::function<void(onnx::NodeProto&)> extra = nullptr) {
  SCOPED_TRACE(std::string(op) + " x " + shape_to_string(x) + " kernel " +
               shape_to_string(win.kernel) + " " + dtype_name(dtype));
  const auto [rtol, atol] = dnn_tolerance(dtype);
  expect_op_matches_cpu(
      {op, {random_tensor(dtype, x, -2, 2, 11)}, outputs, 19, window_attrs(win, std::move(extra))},
      rtol, atol);
}

std::function<void(onnx::NodeProto&)> int_attr(const char* name, int64_t value) {
  return [name, value](onnx::NodeProto& n) { set_attr(n, name, value); };
}

TEST(CudaHostPool, LibraryWindows) {
  for (const char* op : {"MaxPool", "AveragePool"}) {
    for (DType dtype : kDtypes) {
      expect_pool(op, {2, 3, 9, 8}, {{3, 3}, {2, 2}, {1, 1, 1, 1}, {}, ""}, dtype);
      expect_pool(op, {2, 3, 10}, {{2}, {2}, {}, {}, ""}, dtype);
      expect_pool(op, {1, 2, 5, 6, 7}, {{2, 3, 3}, {1, 2, 2}, {0, 1, 1, 0, 1, 1}, {}, ""}, dtype);
    }
  }
  expect_pool("AveragePool", {2, 3, 9, 8}, {{3, 3}, {2, 2}, {1, 1, 1, 1}, {}, ""}, DType::Float, 1,
              int_attr("count_include_pad", 1));
}

TEST(CudaHostPool, WindowsTheLibraryDoesNotCompute) {
  for (const char* op : {"MaxPool", "AveragePool"}) {
    for (int64_t include : {0, 1}) {
      if (std::string(op) == "MaxPool" && include) continue;
      auto extra =
          std::string(op) == "AveragePool" ? int_attr("count_include_pad", include) : nullptr;
      for (DType dtype : {DType::Float, DType::Float16}) {
        // Pads whose begin and end differ, ceil_mode's extra window, dilations.
        expect_pool(op, {2, 3, 8, 9}, {{3, 3}, {1, 1}, {0, 2, 1, 0}, {}, ""}, dtype, 1, extra);
        expect_pool(op, {2, 2, 9, 10}, {{3, 2}, {2, 3}, {1, 0, 1, 0}, {}, "", 1}, dtype, 1, extra);
        expect_pool(op, {1, 2, 11, 10}, {{3, 3}, {1, 2}, {1, 1, 1, 1}, {2, 2}, ""}, dtype, 1,
                    extra);
      }
      expect_pool(op, {1, 2, 12}, {{4}, {3}, {1, 1}, {}, "", 1}, DType::Float, 1, extra);
      expect_pool(op, {1, 1, 5, 6, 7}, {{2, 2, 3}, {2, 1, 2}, {}, {1, 2, 1}, "", 1}, DType::Float,
                  1, extra);
    }
  }
}

TEST(CudaHostPool, EveryAutoPad) {
  for (const char* op : {"MaxPool", "AveragePool"}) {
    for (const char* auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}) {
      SCOPED_TRACE(auto_pad);
      expect_pool(op, {2, 2, 7, 8}, {{3, 2}, {2, 2}, {}, {}, auto_pad});
      expect_pool(op, {1, 3, 9}, {{4}, {1}, {}, {}, auto_pad}, DType::BFloat16);
    }
  }
}

TEST(CudaHostPool, MaxPoolIndices) {
  for (DType dtype : kDtypes) {
    for (int64_t order : {0, 1}) {
      SCOPED_TRACE("storage_order " + std::to_string(order));
      expect_pool("MaxPool", {2, 3, 7, 6}, {{3, 2}, {2, 1}, {1, 0, 1, 1}, {}, ""}, dtype, 2,
                  int_attr("storage_order", order));
      expect_pool("MaxPool", {1, 2, 4, 5, 6}, {{2, 2, 2}, {2, 2, 2}, {}, {}, "", 1}, dtype, 2,
                  int_attr("storage_order", order));
    }
  }
  expect_pool("MaxPool", {2, 2, 13}, {{3}, {2}, {1, 1}, {2}, ""}, DType::Float, 2);
}

TEST(CudaHostPool, MaxPoolSkipsNaN) {
  Tensor x = random_tensor(DType::Float, {1, 2, 4, 4}, -1, 1, 3);
  x.data<float>()[5] = NAN;
  x.data<float>()[10] = NAN;
  for (const Window& win :
       {Window{{2, 2}, {2, 2}, {}, {}, ""}, Window{{3, 3}, {1, 1}, {1, 0, 0, 1}, {}, ""}}) {
    expect_op_matches_cpu({"MaxPool", {x}, 1, 19, window_attrs(win, nullptr)});
  }
}

TEST(CudaHostPool, GlobalPools) {
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    for (DType dtype : kDtypes) {
      const auto [rtol, atol] = dnn_tolerance(dtype);
      for (const Shape& x :
           {Shape{2, 3, 7}, Shape{2, 5, 9, 11}, Shape{1, 3, 4, 5, 6}, Shape{3, 2, 1, 1}})
        expect_op_matches_cpu({op, {random_tensor(dtype, x, -2, 2, 5)}}, rtol, atol);
    }
  }
  Tensor x = random_tensor(DType::Float, {1, 2, 3, 3}, -1, 1, 6);
  x.data<float>()[4] = NAN;
  expect_op_matches_cpu({"GlobalMaxPool", {x}});
}

// com.graft MaxPoolGrad (dY, X) with MaxPool's window attributes.
void expect_max_pool_grad(const Shape& x, const Window& win, DType dtype = DType::Float,
                          bool ties = false) {
  SCOPED_TRACE("MaxPoolGrad x " + shape_to_string(x) + " kernel " + shape_to_string(win.kernel) +
               " " + dtype_name(dtype));
  Shape y = {x[0], x[1]};
  const size_t n = win.kernel.size();
  for (size_t i = 0; i < n; ++i) {
    const Shape pads = win.pads.empty() ? Shape(2 * n, 0) : win.pads;
    const int64_t stride = win.strides.empty() ? 1 : win.strides[i];
    const int64_t dilation = win.dilations.empty() ? 1 : win.dilations[i];
    const int64_t span = x[2 + i] + pads[i] + pads[n + i] - (win.kernel[i] - 1) * dilation - 1;
    int64_t out = span / stride + 1;
    if (win.ceil_mode && span % stride != 0 && out * stride < x[2 + i] + pads[i]) ++out;
    y.push_back(out);
  }
  // Ties: values from {-1, 0, 1} only, so windows hold equal maxima.
  Tensor xs = random_tensor(dtype, x, -2, 2, 12);
  if (ties) {
    const Tensor levels = random_tensor(DType::Int64, x, -1, 2, 12);
    std::vector<double> values(static_cast<size_t>(levels.size()));
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<double>(levels.data<int64_t>()[i]);
    xs = tensor_of(dtype, x, values);
  }
  const std::vector<Tensor> inputs = {random_tensor(dtype, y, -1, 1, 13), xs};
  const ir::Model model =
      declared_op_model("MaxPoolGrad", inputs, {{dtype, x}}, window_attrs(win, nullptr));
  const auto [rtol, atol] = dnn_tolerance(dtype);
  expect_matches_cpu(model, declared_op_feeds(inputs), rtol, atol);
}

TEST(CudaHostMaxPoolGrad, MatchesCpu) {
  for (DType dtype : kDtypes) {
    expect_max_pool_grad({2, 3, 8, 8}, {{3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, ""}, dtype);
    expect_max_pool_grad({2, 2, 7, 9}, {{2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, ""}, dtype);
  }
  // Overlapping windows, pads whose begin and end differ, dilations, ceil_mode.
  expect_max_pool_grad({1, 2, 9, 10}, {{3, 3}, {1, 1}, {0, 1, 2, 0}, {1, 1}, ""});
  expect_max_pool_grad({1, 2, 11, 10}, {{2, 3}, {2, 1}, {1, 1, 1, 1}, {2, 2}, ""});
  expect_max_pool_grad({2, 1, 10, 9}, {{3, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, "", 1});
}

TEST(CudaHostMaxPoolGrad, TiesGoToTheFirstMaximum) {
  expect_max_pool_grad({2, 2, 8, 8}, {{3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, ""}, DType::Float,
                       true);
  expect_max_pool_grad({1, 3, 6, 7}, {{2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, ""}, DType::Float,
                       true);
}

}  // namespace
}  // namespace graft::test_util
