// com.microsoft.SparseToDenseMatMul (onnxruntime's contrib op): Y = alpha * op(A) @ op(B), A a
// sparse 2-D tensor, B and Y dense, op() transposing when transA / transB is 1. graft's sessions
// hand a sparse feed to its kernels in dense form, so A arrives dense here; the product runs over
// A's non-zero elements only, which is what makes the operator worth using for sparse A.
#include "exec/kernel.h"

namespace graft {
namespace {

class SparseToDenseMatMul final : public Kernel {
 public:
  explicit SparseToDenseMatMul(const KernelInfo& info)
      : alpha_(info.attr_float("alpha", 1.0f)),
        trans_a_(info.attr_int("transA", 0) != 0),
        trans_b_(info.attr_int("transB", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.shape().size() != 2 || b.shape().size() != 2) {
      ctx.fail("A and B must be 2-D, got " + shape_to_string(a.shape()) + " and " +
               shape_to_string(b.shape()));
    }
    if (a.dtype() != b.dtype()) {
      ctx.fail(std::string("A holds ") + dtype_name(a.dtype()) + " and B " + dtype_name(b.dtype()));
    }
    const int64_t m = a.shape()[trans_a_ ? 1 : 0];
    const int64_t k = a.shape()[trans_a_ ? 0 : 1];
    const int64_t kb = b.shape()[trans_b_ ? 1 : 0];
    const int64_t n = b.shape()[trans_b_ ? 0 : 1];
    if (k != kb) {
      ctx.fail("op(A) has " + std::to_string(k) + " columns but op(B) " + std::to_string(kb) +
               " rows");
    }
    Tensor& y = ctx.output_zeroed(0, a.dtype(), {m, n});
    switch (a.dtype()) {
      case DType::Float:
        return multiply<float>(a, b, y, m, k, n);
      case DType::Double:
        return multiply<double>(a, b, y, m, k, n);
      case DType::Int32:
        return multiply<int32_t>(a, b, y, m, k, n);
      case DType::Int64:
        return multiply<int64_t>(a, b, y, m, k, n);
      case DType::UInt32:
        return multiply<uint32_t>(a, b, y, m, k, n);
      case DType::UInt64:
        return multiply<uint64_t>(a, b, y, m, k, n);
      default:
        ctx.fail(std::string("no kernel for ") + dtype_name(a.dtype()) + " tensors");
    }
  }

 private:
  template <typename T>
  void multiply(const Tensor& a, const Tensor& b, Tensor& y, int64_t m, int64_t k,
                int64_t n) const {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.data<T>();
    const T alpha = static_cast<T>(alpha_);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t p = 0; p < k; ++p) {
        const T av = trans_a_ ? pa[p * m + i] : pa[i * k + p];
        if (av == T{}) continue;
        const T scaled = alpha * av;
        for (int64_t j = 0; j < n; ++j)
          py[i * n + j] += scaled * (trans_b_ ? pb[j * k + p] : pb[p * n + j]);
      }
    }
  }

  float alpha_;
  bool trans_a_;
  bool trans_b_;
};

}  // namespace

GRAFT_CPU_KERNELS(sparse_to_dense_matmul) {
  reg.add({"com.microsoft",
           "SparseToDenseMatMul",
           1,
           1 << 30,
           {DType::Float, DType::Double, DType::Int32, DType::Int64, DType::UInt32, DType::UInt64},
           0,
           make<SparseToDenseMatMul>});
}

}  // namespace graft
