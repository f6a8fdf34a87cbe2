#include "providers/cpu/linalg/gemm_util.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <string>

#include "exec/error.h"

namespace graft::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // oneDNN rejects K = 0; the product is empty, so only the beta scaling remains.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha,
                                          a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success)
    throw Fail("oneDNN sgemm failed with status " + std::to_string(static_cast<int>(status)) +
               " for M=" + std::to_string(m) + " N=" + std::to_string(n) +
               " K=" + std::to_string(k));
}

Tensor to_float_tensor(const Tensor& t) {
  if (t.dtype() == DType::Float) return t;
  Tensor out(DType::Float, t.shape());
  float* dst = out.data<float>();
  const int64_t count = t.size();
  switch (t.dtype()) {
    case DType::Float16: {
      const Float16* src = t.data<Float16>();
      for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
      break;
    }
    case DType::BFloat16: {
      const BFloat16* src = t.data<BFloat16>();
      for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
      break;
    }
    case DType::Double: {
      const double* src = t.data<double>();
      for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
      break;
    }
    default:
      throw_unsupported_dtype(t.dtype(), "to_float_tensor");
  }
  return out;
}

void copy_from_float(const Tensor& src, Tensor& dst) {
  const float* s = src.data<float>();
  const int64_t count = dst.size();
  switch (dst.dtype()) {
    case DType::Float:
      if (dst.raw() != src.raw())
        for (int64_t i = 0; i < count; ++i) dst.data<float>()[i] = s[i];
      break;
    case DType::Float16:
      for (int64_t i = 0; i < count; ++i) dst.data<Float16>()[i] = Float16(s[i]);
      break;
    case DType::BFloat16:
      for (int64_t i = 0; i < count; ++i) dst.data<BFloat16>()[i] = BFloat16(s[i]);
      break;
    case DType::Double:
      for (int64_t i = 0; i < count; ++i) dst.data<double>()[i] = s[i];
      break;
    default:
      throw_unsupported_dtype(dst.dtype(), "copy_from_float");
  }
}

}  // namespace graft::cpu
