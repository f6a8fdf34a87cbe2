// Transpose: permutes the axes (reversed when perm is absent).
#include <numeric>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class Transpose final : public Kernel {
 public:
  explicit Transpose(const KernelInfo& info) : perm_(info.attr_ints("perm")) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const auto rank = static_cast<size_t>(x.rank());
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) {
      perm.resize(rank);
      std::iota(perm.rbegin(), perm.rend(), 0);
    }
    if (perm.size() != rank) {
      ctx.fail("perm has " + std::to_string(perm.size()) + " entries for an input of rank " +
               std::to_string(rank));
    }
    const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(x.shape());
    std::vector<bool> seen(rank, false);
    Shape shape(rank);
    std::vector<int64_t> strides(rank);
    for (size_t i = 0; i < rank; ++i) {
      const int64_t p = perm[i] < 0 ? perm[i] + static_cast<int64_t>(rank) : perm[i];
      if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
        ctx.fail("perm " + shape_to_string(perm) + " is not a permutation of the axes");
      }
      seen[static_cast<size_t>(p)] = true;
      shape[i] = x.dim(p);
      strides[i] = in_strides[static_cast<size_t>(p)];
    }
    Tensor& y = ctx.output(0, x.dtype(), shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Transpose", [&](auto tag) {
      using T = typename decltype(tag)::type;
      tensor_ops::strided_copy_into<T>(y, x, 0, strides);
    });
  }

 private:
  std::vector<int64_t> perm_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_transpose) {
  reg.add({"", "Transpose", 1, 1 << 30, {}, 0, make<Transpose>});
}

}  // namespace graft
