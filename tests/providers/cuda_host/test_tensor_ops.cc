// The CUDA provider's data movement and shape kernels (providers/cuda/kernels/tensor.h), compiled
// for the host, against the CPU provider: every op, exact for every dtype (they move bytes), with
// the attribute combinations that change the indexing.
#include <gtest/gtest.h>

#include <limits>

#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/tensor.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_tensor<HostBackend>);

// The dtypes each op is run with: 4, 8, 1 and 2 bytes, and a 16-bit float.
const std::vector<DType> kTypes = {DType::Float,  DType::Int64, DType::Bool,    DType::Float16,
                                   DType::Double, DType::UInt8, DType::BFloat16};

Tensor ints(const std::vector<double>& values) {
  return tensor_of(DType::Int64, {static_cast<int64_t>(values.size())}, values);
}

Tensor data(DType dtype, const Shape& shape, uint64_t seed = 1) {
  const bool is_unsigned = dtype_is_integer(dtype) && !dtype_is_signed(dtype);
  return random_tensor(dtype, shape, is_unsigned ? 0 : -50, 50, seed);
}

// Mostly zeros, else small integers.
Tensor sparse(DType dtype, const Shape& shape, uint64_t seed = 1) {
  const Tensor picks = random_tensor(DType::Int64, shape, -3, 3, seed);
  std::vector<double> values;
  for (int64_t v : picks.to_int_vector()) values.push_back(v > 0 ? static_cast<double>(v) : 0.0);
  return tensor_of(dtype, shape, values);
}

// Exact comparison: the kernels only move elements.
void expect_exact(const OpCase& c) { expect_op_matches_cpu(c, 0, 0); }

TEST(CudaHostTensor, ReshapeFlattenViews) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"Reshape", {data(dtype, {2, 3, 4}), ints({4, -1})}});
    expect_exact({"Identity", {data(dtype, {5, 2})}});
    expect_exact({"Flatten", {data(dtype, {2, 3, 4})}});
  }
  expect_exact({"Reshape", {data(DType::Float, {2, 3, 4}), ints({0, 0, 2, 2})}});
  expect_exact(
      {"Reshape", {data(DType::Float, {2, 0, 4}), ints({0, 4, 5})}, 1, 18, [](onnx::NodeProto& n) {
         set_attr(n, "allowzero", int64_t{1});
       }});
  expect_exact({"Reshape", {data(DType::Float, {1, 1}), ints({})}});
  for (int64_t axis : {0, 1, 2, 3, -1, -3}) {
    expect_exact({"Flatten", {data(DType::Int64, {2, 3, 4})}, 1, 18, [&](onnx::NodeProto& n) {
                    set_attr(n, "axis", axis);
                  }});
  }
}

TEST(CudaHostTensor, SqueezeUnsqueeze) {
  for (DType dtype : {DType::Float, DType::Bool, DType::Float16}) {
    expect_exact({"Squeeze", {data(dtype, {1, 3, 1, 2}), ints({0, -2})}});
    expect_exact({"Squeeze", {data(dtype, {1, 3, 1, 2})}});
    expect_exact({"Unsqueeze", {data(dtype, {3, 2}), ints({0, -1, 2})}});
  }
  expect_exact({"Squeeze", {data(DType::Int64, {1, 3, 1})}, 1, 11, [](onnx::NodeProto& n) {
                  set_attr(n, "axes", std::vector<int64_t>{2});
                }});
  expect_exact({"Unsqueeze", {data(DType::Int64, {3})}, 1, 11, [](onnx::NodeProto& n) {
                  set_attr(n, "axes", std::vector<int64_t>{0, 2});
                }});
}

TEST(CudaHostTensor, Transpose) {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{3, 5}, {1, 0}},
      {{2, 3, 4}, {2, 0, 1}},
      {{2, 3, 4}, {0, 2, 1}},
      {{2, 3, 4, 5}, {3, 1, 0, 2}},
      {{2, 1, 3, 1, 2}, {4, 3, 2, 1, 0}},
      {{4, 3, 2}, {0, 1, 2}},
      // Nine dims whose units and contiguous runs collapse within the kernels' eight.
      {{2, 1, 3, 1, 2, 1, 2, 1, 2}, {8, 1, 2, 3, 4, 5, 6, 7, 0}}};
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    for (const auto& c : cases) {  // not bound: the lambda captures the permutation
      const auto& perm = c.second;
      expect_exact({"Transpose", {data(dtype, c.first)}, 1, 18, [&](onnx::NodeProto& n) {
                      set_attr(n, "perm", perm);
                    }});
    }
    expect_exact({"Transpose", {data(dtype, {2, 3, 4})}});
  }
}

TEST(CudaHostTensor, Slice) {
  const double kBig = static_cast<double>(std::numeric_limits<int64_t>::max());
  struct Case {
    std::vector<double> starts, ends, axes, steps;
  };
  const std::vector<Case> cases = {
      {{1, 0}, {3, 4}, {}, {}},
      {{0}, {kBig}, {1}, {2}},
      {{-1}, {-kBig}, {2}, {-1}},
      {{4, -2}, {0, -100}, {0, 2}, {-2, -1}},
      {{-100, 1}, {100, 100}, {-1, 1}, {3, 2}},
      {{2}, {2}, {0}, {1}},
      {{3}, {1}, {1}, {1}},
      {{10}, {20}, {2}, {1}},
  };
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    for (const Case& c : cases) {
      std::vector<Tensor> inputs = {data(dtype, {5, 4, 6}), ints(c.starts), ints(c.ends)};
      inputs.push_back(c.axes.empty() ? Tensor() : ints(c.axes));
      inputs.push_back(c.steps.empty() ? Tensor() : ints(c.steps));
      expect_exact({"Slice", inputs});
    }
  }
  // Slice-1: starts, ends and axes as attributes.
  expect_exact({"Slice", {data(DType::Float, {5, 4})}, 1, 9, [](onnx::NodeProto& n) {
                  set_attr(n, "starts", std::vector<int64_t>{1, -3});
                  set_attr(n, "ends", std::vector<int64_t>{100, -1});
                }});
}

TEST(CudaHostTensor, ExpandTile) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"Expand", {data(dtype, {3, 1}), ints({2, 3, 4})}});
    expect_exact({"Expand", {data(dtype, {1, 4}), ints({3, 1})}});
    expect_exact({"Tile", {data(dtype, {2, 3}), ints({3, 2})}});
  }
  expect_exact({"Expand", {data(DType::Float, {2, 1, 3}), ints({2, 1, 0, 1})}});
  expect_exact({"Tile", {data(DType::Int64, {2, 1, 3}), ints({1, 4, 0})}});
  expect_exact({"Tile", {data(DType::Float16, {2, 1, 3, 2, 1}), ints({2, 3, 1, 2, 2})}});
}

TEST(CudaHostTensor, Concat) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    for (int64_t axis : {0, 1, -1}) {
      expect_exact(
          {"Concat",
           {data(dtype, {2, 3, 4}, 1), data(dtype, {2, 3, 4}, 2), data(dtype, {2, 3, 4}, 3)},
           1,
           18,
           [&](onnx::NodeProto& n) { set_attr(n, "axis", axis); }});
    }
  }
  expect_exact(
      {"Concat",
       {data(DType::Float, {2, 1}), data(DType::Float, {2, 0}), data(DType::Float, {2, 4})},
       1,
       18,
       [](onnx::NodeProto& n) { set_attr(n, "axis", int64_t{1}); }});
}

TEST(CudaHostTensor, Split) {
  auto axis = [](int64_t a) { return [a](onnx::NodeProto& n) { set_attr(n, "axis", a); }; };
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"Split", {data(dtype, {6, 4})}, 3, 13, axis(0)});
    expect_exact({"Split", {data(dtype, {3, 7}), ints({2, 0, 5})}, 3, 13, axis(-1)});
  }
  // Split-11: sizes as an attribute; Split-18: num_outputs with a smaller last piece.
  expect_exact({"Split", {data(DType::Float, {2, 5, 2})}, 2, 11, [](onnx::NodeProto& n) {
                  set_attr(n, "axis", int64_t{1});
                  set_attr(n, "split", std::vector<int64_t>{1, 4});
                }});
  expect_exact({"Split", {data(DType::Int64, {7, 2})}, 3, 18, [](onnx::NodeProto& n) {
                  set_attr(n, "num_outputs", int64_t{3});
                }});
}

TEST(CudaHostTensor, Pad) {
  const std::vector<std::vector<double>> pads = {
      {1, 2, 2, 1}, {0, 3, 0, 0}, {2, 0, 1, 2}, {-1, 1, 1, -2}, {3, 4, 3, 4}};
  for (const char* mode : {"constant", "reflect", "edge", "wrap"}) {
    for (const auto& p : pads) {
      for (DType dtype : {DType::Float, DType::Int64, DType::Float16, DType::Bool}) {
        SCOPED_TRACE(std::string(mode) + " " + dtype_name(dtype));
        expect_exact({"Pad", {data(dtype, {3, 4}), ints(p)}, 1, 19, [&](onnx::NodeProto& n) {
                        set_attr(n, "mode", mode);
                      }});
      }
    }
  }
  // A constant value input (read on the device) and axes (opset 18).
  expect_exact({"Pad",
                {data(DType::Float, {2, 3, 4}), ints({1, 2, 0, 0, 3, 1}),
                 tensor_of(DType::Float, {}, {7.5})}});
  expect_exact({"Pad",
                {data(DType::Int64, {2, 3, 4}), ints({1, 2, 0, 3}),
                 tensor_of(DType::Int64, {}, {-9}), ints({-1, 0})}});
  expect_exact({"Pad",
                {data(DType::Float16, {2, 3, 4}), ints({1, 1, 1, 1}), Tensor(), ints({1, 2})},
                1,
                18,
                [](onnx::NodeProto& n) { set_attr(n, "mode", "reflect"); }});
  // Pad-2: pads and the value as attributes.
  expect_exact({"Pad", {data(DType::Float, {2, 3})}, 1, 2, [](onnx::NodeProto& n) {
                  set_attr(n, "pads", std::vector<int64_t>{1, 0, 0, 2});
                  set_attr(n, "value", 2.5f);
                }});
}

TEST(CudaHostTensor, PadIndexMatchesExec) {
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap}) {
    for (int64_t dim = 1; dim < 6; ++dim) {
      for (int64_t i = -13; i < 0; ++i) {
        EXPECT_EQ(cuda::pad_index(mode, i, dim), pad_source(mode, i, dim));
        EXPECT_EQ(cuda::pad_index(mode, dim - 1 - i, dim), pad_source(mode, dim - 1 - i, dim));
      }
    }
  }
}

TEST(CudaHostTensor, Range) {
  const std::vector<std::vector<double>> cases = {
      {0, 10, 3}, {10, -3, -2}, {1, 1, 1}, {5, 1, 1}, {-4, 17, 5}};
  for (DType dtype : {DType::Float, DType::Double, DType::Int16, DType::Int32, DType::Int64}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(dtype_name(dtype));
      expect_exact({"Range",
                    {tensor_of(dtype, {}, {c[0]}), tensor_of(dtype, {}, {c[1]}),
                     tensor_of(dtype, {}, {c[2]})}});
    }
  }
  expect_exact({"Range",
                {tensor_of(DType::Float, {}, {0.1}), tensor_of(DType::Float, {}, {2.05}),
                 tensor_of(DType::Float, {}, {0.13})}});
}

TEST(CudaHostTensor, ConstantOfShape) {
  expect_exact({"ConstantOfShape", {ints({2, 3})}});
  expect_exact({"ConstantOfShape", {ints({4, 0})}});
  for (DType dtype : kTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"ConstantOfShape", {ints({3, 1, 2})}, 1, 18, [&](onnx::NodeProto& n) {
                    auto* a = n.add_attribute();
                    a->set_name("value");
                    a->set_type(onnx::AttributeProto::TENSOR);
                    auto* t = a->mutable_t();
                    t->set_data_type(static_cast<int>(dtype));
                    t->add_dims(1);
                    const Tensor v = tensor_of(dtype, {1}, {1});
                    t->set_raw_data(std::string(static_cast<const char*>(v.raw()), v.nbytes()));
                  }});
  }
}

TEST(CudaHostTensor, NonZero) {
  for (DType dtype : {DType::Float, DType::Int64, DType::Bool, DType::Float16, DType::UInt8}) {
    SCOPED_TRACE(dtype_name(dtype));
    expect_exact({"NonZero", {sparse(dtype, {3, 4, 5})}});
    expect_exact({"NonZero", {sparse(dtype, {7}, 2)}});
  }
  // Several chunks, a remainder chunk, and none at all.
  expect_exact({"NonZero", {sparse(DType::Int32, {3, 1700, 3})}});
  expect_exact({"NonZero", {tensor_of(DType::Float, {2, 3}, {0, 0, 0, 0, 0, 0})}});
  expect_exact({"NonZero", {tensor_of(DType::Float, {0, 3}, {})}});
}

}  // namespace
}  // namespace graft::test_util
