// A general matrix product as the kernels describe it and a backend runs it:
//
//   void gemm(const GemmDesc& desc, const void* a, const void* b, void* c,
//             const void* bias = nullptr) const;
//
// CudaBackend runs it through cuBLASLt (providers/cuda/blas.cu); HostBackend as a plain loop in
// double (tests/providers/cuda_host/host_blas.cc), the reference the host tests hold the kernels'
// descriptions to. Every matrix is row-major, as graft's tensors are.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "exec/dtype.h"
#include "exec/error.h"

namespace graft::cuda {

// What is applied to each element last.
enum class Epilogue : uint8_t {
  None,
  Relu,
  Gelu,  // the tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as cuBLASLt's
};

// For each batch index b in [0, batch), row i in [0, m) and column j in [0, n):
//
//   op(A)[i][p] = trans_a ? A[b * stride_a + p * lda + i] : A[b * stride_a + i * lda + p]
//   op(B)[p][j] = trans_b ? B[b * stride_b + j * ldb + p] : B[b * stride_b + p * ldb + j]
//   C[b * stride_c + i * ldc + j] = epilogue(alpha * sum_p op(A)[i][p] op(B)[p][j]
//                                            + beta * C[...]  (not read when beta is 0)
//                                            + bias[j])       (when `bias`)
//
// The sum is accumulated in float for float, float16 and bfloat16 (in float with the inputs
// rounded to TF32 when `tf32`), in double for double. A stride of 0 reads one matrix of A or B
// for every batch index; C's matrices must not overlap. K may be 0 (the sum is 0).
struct GemmDesc {
  DType a_type = DType::Float, b_type = DType::Float, c_type = DType::Float;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  // Elements between consecutive rows of the stored matrices, and between consecutive matrices.
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;
  // n values of c_type, one per column, the same for every row and batch index.
  bool bias = false;
  Epilogue epilogue = Epilogue::None;
  bool tf32 = false;  // float32 inputs only

  auto operator<=>(const GemmDesc&) const = default;
};

// "GEMM float m=2 n=3 k=4 batch=1 ..." for error messages.
inline std::string describe(const GemmDesc& d) {
  auto i = [](int64_t v) { return std::to_string(v); };
  return std::string("GEMM ") + dtype_name(d.a_type) + " x " + dtype_name(d.b_type) + " -> " +
         dtype_name(d.c_type) + " m=" + i(d.m) + " n=" + i(d.n) + " k=" + i(d.k) +
         " batch=" + i(d.batch) + (d.trans_a ? " transA" : "") + (d.trans_b ? " transB" : "") +
         " lda=" + i(d.lda) + " ldb=" + i(d.ldb) + " ldc=" + i(d.ldc) +
         " strides=" + i(d.stride_a) + "/" + i(d.stride_b) + "/" + i(d.stride_c) +
         (d.bias ? " bias" : "") +
         (d.epilogue == Epilogue::Relu   ? " relu"
          : d.epilogue == Epilogue::Gelu ? " gelu"
                                         : "") +
         (d.tf32 ? " tf32" : "");
}

// Throws InvalidArgument naming the description when its layout is not one a backend can run:
// negative sizes, a leading dimension shorter than a stored row, overlapping output matrices,
// TF32 on other inputs than float32.
inline void check_gemm(const GemmDesc& d) {
  const int64_t a_cols = d.trans_a ? d.m : d.k, b_cols = d.trans_b ? d.k : d.n;
  const bool ok = d.m >= 0 && d.n >= 0 && d.k >= 0 && d.batch >= 0 && d.lda >= a_cols &&
                  d.ldb >= b_cols && d.ldc >= d.n && d.stride_a >= 0 && d.stride_b >= 0 &&
                  (d.batch <= 1 || d.stride_c >= d.m * d.ldc) &&
                  (!d.tf32 || (d.a_type == DType::Float && d.b_type == DType::Float));
  if (!ok) throw InvalidArgument("an invalid " + describe(d));
}

}  // namespace graft::cuda
