// The packed-weight GEMM (providers/cpu/linalg/packed_gemm.h) against a naive loop in double, over
// shapes off every tile and block size, each activation, with and without bias; and the dense
// kernels that pack their weight: they report it in packed_inputs() and compute without it.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "ir/model.h"
#include "providers/cpu/linalg/packed_gemm.h"

namespace graft {
namespace {

using cpu::Activation;

Tensor filled(const Shape& shape, float scale) {
  Tensor t(DType::Float, shape);
  for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = std::sin(scale * (i + 1)) * 0.5f;
  return t;
}

double activate(Activation activation, double x) {
  switch (activation) {
    case Activation::None:
      return x;
    case Activation::Relu:
      return x > 0 ? x : 0;
    case Activation::Gelu:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Activation::Tanh:
      return std::tanh(x);
    case Activation::Sigmoid:
      return 1 / (1 + std::exp(-x));
  }
  return x;
}

// activation(alpha * A * op(B) + bias), in double.
std::vector<double> naive(const Tensor& a, const Tensor& b, bool trans, float alpha,
                          const float* bias, Activation activation) {
  const int64_t m = a.dim(0), k = a.dim(1), n = trans ? b.dim(0) : b.dim(1);
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += double(a.data<float>()[i * k + p]) *
               double(trans ? b.data<float>()[j * k + p] : b.data<float>()[p * n + j]);
      sum = alpha * sum + (bias ? bias[j] : 0.0);
      y[static_cast<size_t>(i * n + j)] = activate(activation, sum);
    }
  }
  return y;
}

const Activation kActivations[] = {Activation::None, Activation::Relu, Activation::Gelu,
                                   Activation::Tanh, Activation::Sigmoid};

TEST(PackedGemm, MatchesANaiveLoop) {
  int case_index = 0;
  for (int64_t m : {1, 2, 3, 5, 6, 7, 8, 13, 49, 50}) {
    for (int64_t n : {1, 8, 15, 16, 17, 40}) {
      for (int64_t k : {0, 1, 7, 300}) {
        for (bool trans : {false, true}) {
          const Activation activation = kActivations[case_index % 5];
          const bool with_bias = case_index++ % 3 != 0;
          SCOPED_TRACE("m " + std::to_string(m) + " n " + std::to_string(n) + " k " +
                       std::to_string(k) + (trans ? " transposed" : "") +
                       (with_bias ? " bias" : "") + " activation " +
                       std::to_string(static_cast<int>(activation)));
          const Tensor a = filled({m, k}, 0.37f);
          const Tensor b = filled(trans ? Shape{n, k} : Shape{k, n}, 0.11f);
          const Tensor bias = filled({n}, 0.7f);
          const cpu::PackedB packed(b, trans, 0.5f);
          Tensor y(DType::Float, {m, n});
          const float* bias_data = with_bias ? bias.data<float>() : nullptr;
          cpu::packed_gemm(m, a.data<float>(), k, packed, bias_data, activation, y.data<float>(),
                           n);
          const std::vector<double> want = naive(a, b, trans, 0.5f, bias_data, activation);
          for (int64_t i = 0; i < m * n; ++i)
            ASSERT_NEAR(y.data<float>()[i], want[static_cast<size_t>(i)], 1e-4) << "element " << i;
        }
      }
    }
  }
}

TEST(PackedGemm, WritesOnlyItsColumnsOfAWiderOutput) {
  const int64_t m = 9, k = 20, n = 11, ldc = 32;
  const Tensor a = filled({m, k}, 0.2f), b = filled({k, n}, 0.3f);
  Tensor y(DType::Float, {m, ldc});
  for (int64_t i = 0; i < y.size(); ++i) y.data<float>()[i] = -7.0f;
  cpu::packed_gemm(m, a.data<float>(), k, cpu::PackedB(b, false), nullptr, Activation::None,
                   y.data<float>(), ldc);
  const std::vector<double> want = naive(a, b, false, 1.0f, nullptr, Activation::None);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = y.data<float>()[i * ldc + j];
      if (j < n)
        EXPECT_NEAR(got, want[static_cast<size_t>(i * n + j)], 1e-4);
      else
        EXPECT_EQ(got, -7.0f) << "row " << i << " column " << j;
    }
  }
}

TEST(PackedGemm, TheThreadCountDoesNotChangeTheResult) {
  // Above the work (2^24 multiply-adds) below which packed_gemm stays on one thread.
  const int64_t m = 130, k = 700, n = 190;
  const Tensor a = filled({m, k}, 0.21f), b = filled({k, n}, 0.17f), bias = filled({n}, 0.5f);
  const cpu::PackedB packed(b, false);
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> results;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    std::vector<float> y(static_cast<size_t>(m * n));
    cpu::packed_gemm(m, a.data<float>(), k, packed, bias.data<float>(), Activation::Gelu, y.data(),
                     n);
    results.push_back(y);
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

ir::Node dense_node(const std::string& domain, const std::string& op_type,
                    std::vector<std::string> inputs) {
  ir::Node node;
  node.domain = domain;
  node.op_type = op_type;
  node.inputs = std::move(inputs);
  node.outputs = {"y"};
  return node;
}

// Builds the CPU kernel of `node` with `constants` (by input index) as its constant inputs.
std::unique_ptr<Kernel> build_kernel(const ir::Node& node, int since,
                                     const std::vector<const Tensor*>& constants) {
  const std::vector<DType> dtypes(node.inputs.size(), DType::Float);
  KernelInfo info(node, since, dtypes, constants);
  const KernelDef* def =
      cpu_kernel_registry().find(node.domain, node.op_type, since, dtypes, &node);
  if (def == nullptr) throw std::runtime_error("no CPU kernel for " + node.op_type);
  return def->factory(info);
}

// Runs `kernel` with `inputs` (an absent Value for an input it must not read).
Tensor run_kernel(Kernel& kernel, const std::vector<Value>& inputs) {
  std::vector<const Value*> in;
  for (const Value& v : inputs) in.push_back(&v);
  Value y;
  const std::string desc = "[test] node";
  KernelContext ctx(desc, in, {&y}, nullptr);
  kernel.compute(ctx);
  return y.tensor();
}

TEST(DenseKernels, AConstantWeightIsPackedAndNeverReadAgain) {
  const Tensor a = filled({2, 3, 12}, 0.3f), w = filled({12, 20}, 0.13f), c = filled({20}, 0.9f);
  const Tensor a2 = a.reshaped({6, 12});
  const std::vector<double> want = naive(a2, w, false, 1.0f, nullptr, Activation::None);
  const std::vector<double> want_relu =
      naive(a2, w, false, 1.0f, c.data<float>(), Activation::Relu);
  auto expect_equal = [&](const Tensor& got, const std::vector<double>& expected) {
    ASSERT_EQ(got.size(), static_cast<int64_t>(expected.size()));
    for (int64_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got.data<float>()[i], expected[static_cast<size_t>(i)], 1e-4) << i;
  };

  const ir::Node matmul = dense_node("", "MatMul", {"a", "w"});
  auto kernel = build_kernel(matmul, 13, {nullptr, &w});
  EXPECT_EQ(kernel->packed_inputs(), std::vector<int>{1});
  expect_equal(run_kernel(*kernel, {a, Value()}), want);
  // Not a constant: nothing packed, B read at every run.
  EXPECT_TRUE(build_kernel(matmul, 13, {nullptr, nullptr})->packed_inputs().empty());

  ir::Node fused = dense_node("com.graft", "FusedMatMul", {"a", "w", "c"});
  fused.attributes.push_back(ir::string_attribute("activation", "Relu"));
  kernel = build_kernel(fused, 1, {nullptr, &w, nullptr});
  EXPECT_EQ(kernel->packed_inputs(), std::vector<int>{1});
  expect_equal(run_kernel(*kernel, {a, Value(), c}), want_relu);

  const ir::Node gemm = dense_node("", "Gemm", {"a", "w", "c"});
  kernel = build_kernel(gemm, 13, {nullptr, &w, &c});
  EXPECT_EQ(kernel->packed_inputs(), (std::vector<int>{1, 2}));
  const std::vector<double> want_bias =
      naive(a2, w, false, 1.0f, c.data<float>(), Activation::None);
  expect_equal(run_kernel(*kernel, {a2, Value(), Value()}), want_bias);
  // A C from the run is read at run time.
  EXPECT_EQ(build_kernel(gemm, 13, {nullptr, &w, nullptr})->packed_inputs(), std::vector<int>{1});
}

}  // namespace
}  // namespace graft
