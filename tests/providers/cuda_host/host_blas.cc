// HostBackend::gemm: the GEMM description of providers/cuda/kernels/blas.h run as it reads, a
// triple loop in double over the strided matrices, the reference the kernels' descriptions are
// held to (against the CPU provider) and cuBLASLt's results are compared with (tests/gpu).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

using cuda::Epilogue;
using cuda::GemmDesc;

// A float32 value as a TF32 tensor core reads it: 10 mantissa bits, rounded to nearest even.
float round_to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits = (bits + 0xfffu + ((bits >> 13) & 1u)) & ~0x1fffu;
  std::memcpy(&x, &bits, 4);
  return x;
}

template <typename T>
double load(const void* p, int64_t i, bool tf32) {
  const T v = static_cast<const T*>(p)[i];
  if constexpr (std::is_same_v<T, float>) {
    if (tf32) return round_to_tf32(v);
  }
  return static_cast<double>(cuda::widen(v));
}

double apply(Epilogue epilogue, double v) {
  switch (epilogue) {
    case Epilogue::Relu:
      return v > 0 ? v : 0;
    case Epilogue::Gelu:
      return 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    default:
      return v;
  }
}

template <typename TA, typename TB, typename TC>
void reference(const GemmDesc& d, const void* a, const void* b, void* c, const void* bias) {
  auto* out = static_cast<TC*>(c);
  for (int64_t batch = 0; batch < d.batch; ++batch) {
    for (int64_t i = 0; i < d.m; ++i) {
      for (int64_t j = 0; j < d.n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < d.k; ++p) {
          const int64_t ia = batch * d.stride_a + (d.trans_a ? p * d.lda + i : i * d.lda + p);
          const int64_t ib = batch * d.stride_b + (d.trans_b ? j * d.ldb + p : p * d.ldb + j);
          sum += load<TA>(a, ia, d.tf32) * load<TB>(b, ib, d.tf32);
        }
        TC& y = out[batch * d.stride_c + i * d.ldc + j];
        double v = d.alpha * sum;
        if (d.beta != 0) v += d.beta * static_cast<double>(cuda::widen(y));
        if (d.bias) v += static_cast<double>(cuda::widen(static_cast<const TC*>(bias)[j]));
        y = cuda::narrow<TC>(apply(d.epilogue, v));
      }
    }
  }
}

}  // namespace

void HostBackend::gemm(const GemmDesc& desc, const void* a, const void* b, void* c,
                       const void* bias) const {
  cuda::check_gemm(desc);
  if (desc.bias && bias == nullptr)
    throw InvalidArgument("no bias given to a " + cuda::describe(desc));
  const char* what = "HostBackend::gemm";
  cuda::dispatch_device_float(desc.a_type, what, [&](auto ta) {
    cuda::dispatch_device_float(desc.b_type, what, [&](auto tb) {
      cuda::dispatch_device_float(desc.c_type, what, [&](auto tc) {
        reference<typename decltype(ta)::type, typename decltype(tb)::type,
                  typename decltype(tc)::type>(desc, a, b, c, bias);
      });
    });
  });
}

}  // namespace graft::test_util
