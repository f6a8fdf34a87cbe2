// The CUDA provider's MatMul, Gemm and com.graft FusedMatMul (providers/cuda/kernels/matmul.h),
// their GEMM descriptions run by the host reference (host_blas.cc), against the CPU provider:
// every MatMul shape case, Gemm's attributes with every C shape, FusedMatMul's attributes, at 1e-5
// for float32 and double and 1e-2 for the 16-bit floats. Also how a broadcast batch splits into
// strided batched calls, and the reference's own epilogues and strides against a loop here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "ir/names.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/matmul.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

using cuda::Epilogue;

const HostFamily family(&cuda::register_matmul<HostBackend>);

const DType kAllFloats[] = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};

double tolerance(DType dtype) {
  return dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
}

void expect_matmul(const Shape& a, const Shape& b, DType dtype = DType::Float) {
  SCOPED_TRACE(shape_to_string(a) + " x " + shape_to_string(b) + " " + dtype_name(dtype));
  expect_op_matches_cpu(
      {"MatMul", {random_tensor(dtype, a, -1, 1, 1), random_tensor(dtype, b, -1, 1, 2)}},
      tolerance(dtype), 1e-5);
}

TEST(CudaHostMatMul, VectorOperands) {
  for (DType dtype : kAllFloats) {
    expect_matmul({4}, {4}, dtype);
    expect_matmul({3}, {3, 5}, dtype);
    expect_matmul({3}, {2, 3, 5}, dtype);
    expect_matmul({4, 3}, {3}, dtype);
    expect_matmul({2, 4, 3}, {3}, dtype);
  }
}

TEST(CudaHostMatMul, MatricesAndBroadcastBatches) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5, 3}, {3, 7}},                 // one product
      {{3, 4, 5}, {5, 2}},              // one B for every batch index: rows folded into M
      {{4, 5}, {3, 5, 2}},              // one A for every batch index
      {{2, 3, 4, 5}, {2, 3, 5, 6}},     // one strided batch
      {{2, 1, 4, 3}, {5, 3, 6}},        // A per outer index, B per inner: looped over the outer
      {{2, 1, 4, 5}, {1, 3, 5, 6}},     // the same with B's leading 1
      {{3, 1, 2, 4, 5}, {2, 1, 5, 6}},  // three batch axes, two loops' worth
      {{1, 4, 5}, {3, 5, 2}},           // a batch axis of 1
      {{2, 3, 4, 5}, {3, 5, 2}},        // B shared over the leading axis only
  };
  for (const auto& [a, b] : cases) {
    for (DType dtype : kAllFloats) expect_matmul(a, b, dtype);
  }
}

TEST(CudaHostMatMul, InnerDimensionOneAndEmptyDims) {
  expect_matmul({4, 1}, {1, 6});
  expect_matmul({3, 4, 1}, {1, 6});
  expect_matmul({1}, {1, 6});
  expect_matmul({0, 3}, {3, 4});     // no rows
  expect_matmul({5, 3}, {3, 0});     // no columns
  expect_matmul({3, 0}, {0, 4});     // K = 0: zeros
  expect_matmul({2, 4, 0}, {0, 3});  // K = 0, batched
  expect_matmul({0, 4, 3}, {3, 2});  // no batch
  expect_matmul({0}, {0});
}

void expect_gemm(const Shape& a, const Shape& b, const Shape* c, int64_t trans_a, int64_t trans_b,
                 float alpha, float beta, DType dtype = DType::Float) {
  SCOPED_TRACE("A " + shape_to_string(a) + " B " + shape_to_string(b) + " C " +
               (c ? shape_to_string(*c) : "none") + " transA " + std::to_string(trans_a) +
               " transB " + std::to_string(trans_b) + " alpha " + std::to_string(alpha) + " beta " +
               std::to_string(beta) + " " + dtype_name(dtype));
  std::vector<Tensor> inputs = {random_tensor(dtype, a, -1, 1, 1),
                                random_tensor(dtype, b, -1, 1, 2)};
  if (c != nullptr) inputs.push_back(random_tensor(dtype, *c, -1, 1, 3));
  // The CPU provider rounds a 16-bit product before it adds beta * C, so where the two cancel the
  // results differ by the rounding of terms near 1, not of the result.
  const double atol = tolerance(dtype) == 1e-2 ? 1e-2 : 1e-5;
  expect_op_matches_cpu({"Gemm", inputs, 1, 13,
                         [&](onnx::NodeProto& n) {
                           set_attr(n, "transA", trans_a);
                           set_attr(n, "transB", trans_b);
                           set_attr(n, "alpha", alpha);
                           set_attr(n, "beta", beta);
                         }},
                        tolerance(dtype), atol);
}

TEST(CudaHostGemm, TranspositionsScalesAndEveryShapeOfC) {
  const int64_t m = 4, k = 3, n = 5;
  const std::vector<Shape> c_shapes = {{}, {n}, {1, n}, {m, 1}, {m, n}, {1}, {1, 1}};
  const std::vector<std::pair<float, float>> scales = {{1, 1}, {0.5f, 2}, {-1.5f, 0}, {2, 1}};
  for (int64_t trans_a : {0, 1}) {
    for (int64_t trans_b : {0, 1}) {
      const Shape a = trans_a ? Shape{k, m} : Shape{m, k};
      const Shape b = trans_b ? Shape{n, k} : Shape{k, n};
      expect_gemm(a, b, nullptr, trans_a, trans_b, 1, 1);
      for (const Shape& c : c_shapes) {
        for (const auto& [alpha, beta] : scales)
          expect_gemm(a, b, &c, trans_a, trans_b, alpha, beta);
      }
    }
  }
}

TEST(CudaHostGemm, SixteenBitAndDoubleAndEdgeSizes) {
  const Shape row = {6}, column = {7, 1}, full = {7, 6};
  for (DType dtype : kAllFloats) {
    expect_gemm({7, 9}, {6, 9}, &row, 0, 1, 1, 1, dtype);
    expect_gemm({9, 7}, {9, 6}, &column, 1, 0, 0.5f, 2, dtype);
    expect_gemm({7, 9}, {9, 6}, &full, 0, 0, 1, 0.5f, dtype);
  }
  const Shape c = {3, 4}, c_row = {4};
  expect_gemm({3, 0}, {0, 4}, &c, 0, 0, 1, 2);  // K = 0: beta * C
  expect_gemm({3, 0}, {0, 4}, &c_row, 0, 0, 1, 1);
  expect_gemm({3, 1}, {1, 4}, &c_row, 0, 0, 2, 1);
  expect_gemm({0, 2}, {2, 4}, nullptr, 0, 0, 1, 1);
}

// A one-node com.graft FusedMatMul model: ONNX knows no schema to infer its output from, so the
// output's type is given.
ir::Model fused_model(const std::vector<Tensor>& inputs, int64_t trans_a, int64_t trans_b,
                      const Shape& out, const std::string& activation = "") {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(18);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain(names::kDomain);
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name("fused_matmul");
  auto* node = g->add_node();
  node->set_domain(names::kDomain);
  node->set_op_type("FusedMatMul");
  node->set_name("node");
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const Shape& shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(static_cast<int>(dtype));
    for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    node->add_input(name);
    declare(g->add_input(), name, inputs[i].dtype(), inputs[i].shape());
  }
  node->add_output("out0");
  declare(g->add_output(), "out0", inputs[0].dtype(), out);
  set_attr(*node, "transA", trans_a);
  set_attr(*node, "transB", trans_b);
  if (!activation.empty()) set_attr(*node, "activation", activation);
  return ir::load_model_from_bytes(m.SerializeAsString());
}

// Swaps the last two axes of a shape of rank 2 or more.
Shape swapped(Shape s) {
  if (s.size() >= 2) std::swap(s[s.size() - 1], s[s.size() - 2]);
  return s;
}

void expect_fused(const Shape& a, const Shape& b, const Shape* c, int64_t trans_a, int64_t trans_b,
                  const Shape& out, DType dtype = DType::Float) {
  SCOPED_TRACE("A " + shape_to_string(a) + " B " + shape_to_string(b) + " C " +
               (c ? shape_to_string(*c) : "none") + " transA " + std::to_string(trans_a) +
               " transB " + std::to_string(trans_b) + " " + dtype_name(dtype));
  // Stored shapes: the product's operands with the last two axes swapped where transposed.
  std::vector<Tensor> inputs = {random_tensor(dtype, trans_a ? swapped(a) : a, -1, 1, 1),
                                random_tensor(dtype, trans_b ? swapped(b) : b, -1, 1, 2)};
  if (c != nullptr) inputs.push_back(random_tensor(dtype, *c, -1, 1, 3));
  std::map<std::string, Value> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) feeds["in" + std::to_string(i)] = Value(inputs[i]);
  expect_matches_cpu(fused_model(inputs, trans_a, trans_b, out), feeds, tolerance(dtype), 1e-5);
}

TEST(CudaHostFusedMatMul, TranspositionsAndBias) {
  const Shape bias = {6}, scalar = {1}, scalar0 = {};
  for (int64_t trans_a : {0, 1}) {
    for (int64_t trans_b : {0, 1}) {
      for (DType dtype : kAllFloats) {
        expect_fused({4, 5}, {5, 6}, nullptr, trans_a, trans_b, {4, 6}, dtype);
        expect_fused({4, 5}, {5, 6}, &bias, trans_a, trans_b, {4, 6}, dtype);
      }
      expect_fused({3, 4, 5}, {5, 6}, &bias, trans_a, trans_b, {3, 4, 6});
      expect_fused({4, 5}, {2, 5, 6}, &scalar, trans_a, trans_b, {2, 4, 6});
      expect_fused({2, 1, 4, 5}, {3, 5, 6}, &bias, trans_a, trans_b, {2, 3, 4, 6});
      expect_fused({2, 3, 4, 5}, {2, 3, 5, 6}, &scalar0, trans_a, trans_b, {2, 3, 4, 6});
    }
  }
  // A 1-D operand is never transposed; the other may be.
  expect_fused({5}, {2, 5, 6}, &bias, 0, 1, {2, 6});
  expect_fused({3, 4, 5}, {5}, nullptr, 1, 0, {3, 4});
  expect_fused({4, 1}, {1, 6}, &bias, 1, 1, {4, 6});
}

// The activation runs in the GEMM's epilogue (Relu) or, where the device has no exact one, the
// node runs on the CPU: either way the results are the CPU provider's.
TEST(CudaHostFusedMatMul, Activations) {
  for (const std::string activation : {"Relu", "Gelu", "Tanh", "Sigmoid"}) {
    SCOPED_TRACE(activation);
    std::vector<Tensor> inputs = {random_tensor(DType::Float, {4, 5}, -1, 1, 1),
                                  random_tensor(DType::Float, {5, 6}, -1, 1, 2),
                                  random_tensor(DType::Float, {6}, -1, 1, 3)};
    std::map<std::string, Value> feeds;
    for (size_t i = 0; i < inputs.size(); ++i) feeds["in" + std::to_string(i)] = Value(inputs[i]);
    const std::vector<std::string> host_ops =
        activation == "Relu" ? std::vector<std::string>{} : std::vector<std::string>{"FusedMatMul"};
    expect_matches_cpu(fused_model(inputs, 0, 0, {4, 6}, activation), feeds, 1e-5, 1e-6, host_ops);
  }
}

// How a broadcast batch becomes strided batched calls (the layouts themselves are checked above,
// through the reference).
TEST(CudaHostMatMul, BroadcastBatchesBecomeFewStridedCalls) {
  const std::string who = "[MatMul] node 'test'";
  const KernelContext ctx(who, {}, {}, nullptr);
  auto calls = [&](const Shape& a, const Shape& b) {
    return cuda::matmul_gemms(plan_matmul(ctx, a, b), false, false, DType::Float);
  };
  const cuda::GemmCalls full = calls({2, 3, 4, 5}, {2, 3, 5, 6});
  EXPECT_EQ(full.c_offsets.size(), 1u);
  EXPECT_EQ(full.desc.batch, 6);
  EXPECT_EQ(full.desc.stride_a, 20);
  EXPECT_EQ(full.desc.stride_b, 30);
  const cuda::GemmCalls folded = calls({3, 4, 5}, {5, 2});
  EXPECT_EQ(folded.c_offsets.size(), 1u);
  EXPECT_EQ(folded.desc.batch, 1);
  EXPECT_EQ(folded.desc.m, 12);
  const cuda::GemmCalls shared_a = calls({4, 5}, {3, 5, 2});
  EXPECT_EQ(shared_a.c_offsets.size(), 1u);
  EXPECT_EQ(shared_a.desc.stride_a, 0);
  const cuda::GemmCalls outer = calls({2, 1, 4, 5}, {1, 3, 5, 6});
  EXPECT_EQ(outer.c_offsets.size(), 2u);
  EXPECT_EQ(outer.desc.batch, 3);
  EXPECT_EQ(outer.desc.stride_a, 0);
  EXPECT_EQ(outer.desc.stride_b, 30);
  EXPECT_EQ(outer.a_offsets, (std::vector<int64_t>{0, 20}));
  EXPECT_EQ(outer.b_offsets, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(outer.c_offsets, (std::vector<int64_t>{0, 72}));
}

// x with the 10 mantissa bits of TF32, rounded to nearest.
double tf32_of(double x) {
  if (x == 0) return 0;
  const int e = std::ilogb(x);
  return std::ldexp(std::round(std::ldexp(x, 10 - e)), e - 10);
}

// The reference itself, on what no kernel above describes: leading dimensions wider than the
// rows, batch strides with gaps, TF32 inputs and the epilogues, against a loop written here.
TEST(CudaHostBlas, ReferenceReadsTheDescriptionAsWritten) {
  cuda::GemmDesc d;
  d.m = 3;
  d.n = 4;
  d.k = 5;
  d.batch = 2;
  d.trans_a = true;  // A stored k x m
  d.lda = 4;
  d.ldb = 6;
  d.ldc = 5;
  d.stride_a = 25;
  d.stride_b = 0;
  d.stride_c = 16;
  d.alpha = 0.5;
  d.beta = 2;
  d.bias = true;
  std::vector<float> a(50), b(30), bias = {0.5f, -1, 2, -0.25f}, c(32), want(32);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(static_cast<float>(i)) * 1.001f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(static_cast<float>(i)) * 0.999f;
  for (Epilogue epilogue : {Epilogue::None, Epilogue::Relu, Epilogue::Gelu}) {
    for (bool tf32 : {false, true}) {
      SCOPED_TRACE(cuda::describe(d));
      d.epilogue = epilogue;
      d.tf32 = tf32;
      for (size_t i = 0; i < c.size(); ++i) c[i] = want[i] = 0.1f * static_cast<float>(i);
      for (int64_t batch = 0; batch < 2; ++batch) {
        for (int64_t i = 0; i < 3; ++i) {
          for (int64_t j = 0; j < 4; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < 5; ++p) {
              const double x = a[batch * 25 + p * 4 + i], y = b[p * 6 + j];
              sum += tf32 ? tf32_of(x) * tf32_of(y) : x * y;
            }
            float& out = want[batch * 16 + i * 5 + j];
            double v = 0.5 * sum + 2 * out + bias[j];
            if (epilogue == Epilogue::Relu) v = std::max(v, 0.0);
            if (epilogue == Epilogue::Gelu)
              v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            out = static_cast<float>(v);
          }
        }
      }
      HostBackend().gemm(d, a.data(), b.data(), c.data(), bias.data());
      for (size_t i = 0; i < c.size(); ++i) EXPECT_NEAR(c[i], want[i], 1e-5) << i;
    }
  }
  d.tf32 = true;
  d.a_type = DType::Float16;
  EXPECT_THROW(HostBackend().gemm(d, a.data(), b.data(), c.data(), bias.data()), InvalidArgument);
  d.tf32 = false;
  d.a_type = DType::Float;
  d.stride_c = 10;  // the output matrices would overlap
  EXPECT_THROW(HostBackend().gemm(d, a.data(), b.data(), c.data(), bias.data()), InvalidArgument);
}

}  // namespace
}  // namespace graft::test_util
