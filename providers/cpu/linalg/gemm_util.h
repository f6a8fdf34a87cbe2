// Matrix products shared by MatMul, Gemm, Einsum, Conv and ConvTranspose. Row-major throughout.
#pragma once

#include <omp.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "exec/matmul_shape.h"
#include "exec/tensor.h"

namespace graft::cpu {

// C[m x n] = alpha * op(A) * op(B) + beta * C through oneDNN; lda/ldb/ldc are row strides of the
// stored matrices. Throws Fail when oneDNN refuses the call. Inside an OpenMP parallel region
// oneDNN runs on the calling thread only.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The accumulator of a product of T values: float for the half types, wrapping 64-bit unsigned
// arithmetic for integers (so overflow wraps like NumPy instead of being undefined), else T.
template <typename T>
using AccumulateType =
    std::conditional_t<std::is_integral_v<T>, uint64_t,
                       std::conditional_t<std::is_same_v<T, double>, double, float>>;

// C[m x n] (+)= op(A) * op(B) for packed row-major matrices (lda = trans_a ? m : k, ldb =
// trans_b ? k : n, ldc = n). float goes to oneDNN, float16/bfloat16 are computed in float, other
// types in a plain loop. `accumulate` adds to C instead of overwriting it.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c,
          bool accumulate = false) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm(trans_a, trans_b, m, n, k, 1.0f, a, trans_a ? m : k, b, trans_b ? k : n,
          accumulate ? 1.0f : 0.0f, c, n);
  } else if constexpr (std::is_same_v<AccumulateType<T>, float>) {
    std::vector<float> fa(a, a + m * k), fb(b, b + k * n), fc(static_cast<size_t>(m * n));
    if (accumulate) fc.assign(c, c + m * n);
    sgemm(trans_a, trans_b, m, n, k, 1.0f, fa.data(), trans_a ? m : k, fb.data(), trans_b ? k : n,
          accumulate ? 1.0f : 0.0f, fc.data(), n);
    for (int64_t i = 0; i < m * n; ++i) c[i] = T(fc[static_cast<size_t>(i)]);
  } else {
    using Acc = AccumulateType<T>;
    // Products are formed row by row of op(B), so op(B) is read contiguously.
    std::vector<T> bt;
    const T* bp = b;
    if (trans_b) {
      bt.resize(static_cast<size_t>(k * n));
      for (int64_t p = 0; p < k; ++p)
        for (int64_t j = 0; j < n; ++j) bt[static_cast<size_t>(p * n + j)] = b[j * k + p];
      bp = bt.data();
    }
#pragma omp parallel for if (m * n * k > (1 << 18) && !omp_in_parallel())
    for (int64_t i = 0; i < m; ++i) {
      std::vector<Acc> row(static_cast<size_t>(n), Acc(0));
      for (int64_t p = 0; p < k; ++p) {
        const Acc av = static_cast<Acc>(trans_a ? a[p * m + i] : a[i * k + p]);
        const T* brow = bp + p * n;
        for (int64_t j = 0; j < n; ++j)
          row[static_cast<size_t>(j)] += av * static_cast<Acc>(brow[j]);
      }
      T* crow = c + i * n;
      for (int64_t j = 0; j < n; ++j) {
        const Acc v = row[static_cast<size_t>(j)];
        crow[j] = accumulate ? static_cast<T>(static_cast<Acc>(crow[j]) + v) : static_cast<T>(v);
      }
    }
  }
}

// A float copy of a float16/bfloat16/double tensor (a view of a float one).
Tensor to_float_tensor(const Tensor& t);
// Writes the float tensor `src` into `dst`, converting to dst's dtype; shapes must match in size.
void copy_from_float(const Tensor& src, Tensor& dst);

// Calls run(x, w, b, y) with typed pointers for a weighted op (Conv, ConvTranspose): as float or
// double for those types, through float copies for float16/bfloat16. `b` may be null. Returns
// false for any other dtype.
template <typename Run>
bool run_in_float(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, Run&& run) {
  switch (x.dtype()) {
    case DType::Float:
      run(x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr, y.data<float>());
      return true;
    case DType::Double:
      run(x.data<double>(), w.data<double>(), b ? b->data<double>() : nullptr, y.data<double>());
      return true;
    case DType::Float16:
    case DType::BFloat16: {
      const Tensor xf = to_float_tensor(x), wf = to_float_tensor(w);
      const Tensor bf = b ? to_float_tensor(*b) : Tensor();
      Tensor yf(DType::Float, y.shape());
      run(xf.data<float>(), wf.data<float>(), b ? bf.data<float>() : nullptr, yf.data<float>());
      copy_from_float(yf, y);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace graft::cpu
