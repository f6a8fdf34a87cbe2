// Where: elementwise choice between X and Y by a bool condition, all three broadcast.
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/broadcast.h"
#include "providers/cpu/math/elementwise.h"

namespace graft {
namespace {

// A complex128 element, moved as two words.
struct Bytes16 {
  uint64_t lo;
  uint64_t hi;
};

class WhereKernel : public Kernel {
 public:
  explicit WhereKernel(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& cond = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& y = ctx.input(2);
    if (cond.dtype() != DType::Bool) {
      ctx.fail(std::string("condition must be bool, got ") + dtype_name(cond.dtype()));
    }
    if (x.dtype() != y.dtype()) {
      ctx.fail(std::string("X and Y have different dtypes: ") + dtype_name(x.dtype()) + " and " +
               dtype_name(y.dtype()));
    }
    const Shape shape = broadcast_shapes({cond.shape(), x.shape(), y.shape()}, ctx.describe());
    Tensor& out = ctx.output(0, x.dtype(), shape);
    auto run = [&](auto tag) {
      using T = typename decltype(tag)::type;
      broadcast_map<T, bool, T, T>(
          out, [](bool c, const T& a, const T& b) -> const T& { return c ? a : b; }, cond, x, y);
    };
    if (x.dtype() == DType::Complex128) {
      run(TypeTag<Bytes16>{});
    } else {
      dispatch_by_size(x.dtype(), ctx.describe().c_str(), run);
    }
  }
};

}  // namespace

GRAFT_CPU_KERNELS(math_where) {
  elementwise::register_versions(reg, "Where", {9, 16}, {}, make<WhereKernel>, 1);
}

}  // namespace graft
