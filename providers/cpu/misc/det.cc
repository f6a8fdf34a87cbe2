// Det: the determinant of each square matrix in the trailing two dims, by LU decomposition with
// partial pivoting in double precision.
#include <cmath>
#include <utility>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

double lu_determinant(std::vector<double>& a, int64_t m) {
  double det = 1.0;
  for (int64_t col = 0; col < m; ++col) {
    int64_t pivot = col;
    for (int64_t r = col + 1; r < m; ++r) {
      if (std::abs(a[static_cast<size_t>(r * m + col)]) >
          std::abs(a[static_cast<size_t>(pivot * m + col)])) {
        pivot = r;
      }
    }
    const double p = a[static_cast<size_t>(pivot * m + col)];
    if (p == 0.0) return 0.0;
    if (pivot != col) {
      for (int64_t k = 0; k < m; ++k) {
        std::swap(a[static_cast<size_t>(pivot * m + k)], a[static_cast<size_t>(col * m + k)]);
      }
      det = -det;
    }
    det *= p;
    for (int64_t r = col + 1; r < m; ++r) {
      const double f = a[static_cast<size_t>(r * m + col)] / p;
      if (f == 0.0) continue;
      for (int64_t k = col + 1; k < m; ++k) {
        a[static_cast<size_t>(r * m + k)] -= f * a[static_cast<size_t>(col * m + k)];
      }
    }
  }
  return det;
}

class Det final : public Kernel {
 public:
  explicit Det(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2 || x.dim(x.rank() - 1) != x.dim(x.rank() - 2)) {
      ctx.fail("input must be square matrices [*, M, M], got " + shape_to_string(x.shape()));
    }
    const int64_t m = x.dim(x.rank() - 1);
    const Shape out_shape(x.shape().begin(), x.shape().end() - 2);
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    const int64_t count = shape_size(out_shape);
    dispatch_float(x.dtype(), "Det", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (count * m * m > tensor_ops::kParallelElements)
      for (int64_t b = 0; b < count; ++b) {
        std::vector<double> a(static_cast<size_t>(m * m));
        for (int64_t i = 0; i < m * m; ++i) {
          a[static_cast<size_t>(i)] = static_cast<double>(src[b * m * m + i]);
        }
        dst[b] = T(lu_determinant(a, m));
      }
    });
  }
};

}  // namespace

GRAFT_CPU_KERNELS(misc_det) {
  const std::vector<DType> types = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};
  reg.add({"", "Det", 11, 1 << 30, types, 0, make<Det>});
}

}  // namespace graft
