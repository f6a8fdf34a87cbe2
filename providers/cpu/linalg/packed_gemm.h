// Dense layers with a constant weight: the weight is packed once, when the kernel is built, into
// column panels that the GEMM streams without copying, and the bias and activation are applied
// to each tile of the product while it is still in registers or L1. Used by MatMul, Gemm and
// com.graft.FusedMatMul for float weights that are initializers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "exec/tensor.h"

namespace graft::cpu {

// The activation a dense layer applies to its output (com.graft.FusedMatMul's `activation`).
enum class Activation { None, Relu, Gelu, Tanh, Sigmoid };

// The node's `activation` attribute: absent is None, else "Relu", "Gelu" (erf form), "Tanh" or
// "Sigmoid". Fails through `info`, naming the value, for any other string.
Activation activation_attr(const KernelInfo& info);

// Applies `activation` to `count` values in place: float and double directly, the half types
// through float.
void apply_activation(Activation activation, float* data, int64_t count);
void apply_activation(Activation activation, double* data, int64_t count);
template <typename T>
void apply_activation(Activation activation, T* data, int64_t count) {
  if (activation == Activation::None) return;
  std::vector<float> values(data, data + count);
  apply_activation(activation, values.data(), count);
  for (int64_t i = 0; i < count; ++i) data[i] = T(values[static_cast<size_t>(i)]);
}

// A [K, N] float matrix (op(B) of a GEMM) stored as panels of kPanel columns: panel p holds
// columns [p * kPanel, p * kPanel + kPanel) row after row, K rows of kPanel floats, the columns
// past N zero. Immutable once built, so one PackedB serves concurrent runs.
class PackedB {
 public:
  static constexpr int64_t kPanel = 16;

  PackedB() = default;
  // Packs `alpha * op(b)` for a 2-D float tensor `b` (op transposes when `trans`).
  PackedB(const Tensor& b, bool trans, float alpha = 1.0f);

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  // The packed tensor's dtype and shape, without its elements: what the shape rules
  // (exec/matmul_shape.h) read in place of the freed original.
  const Tensor& source() const { return source_; }
  // Panel p starts at data() + p * k() * kPanel.
  const float* data() const { return panels_.data<float>(); }

 private:
  int64_t k_ = 0, n_ = 0;
  Tensor source_, panels_;
};

// The packing of input `input` of the node as op(B) (transposed when `trans`, scaled by
// `alpha`) when it is a 2-D float initializer, else null.
std::unique_ptr<const PackedB> pack_constant(const KernelInfo& info, int input, bool trans,
                                             float alpha = 1.0f);

// C[m x n] = activation(A * B + bias) for row-major A (m x K, row stride lda) and C (row stride
// ldc); `bias` holds n values, or is null. AVX2 and FMA (graft's baseline, x86-64-v3). Threads
// over tiles of C with OpenMP (on the calling thread only inside a parallel region).
void packed_gemm(int64_t m, const float* a, int64_t lda, const PackedB& b, const float* bias,
                 Activation activation, float* c, int64_t ldc);

}  // namespace graft::cpu
