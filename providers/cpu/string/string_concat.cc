// StringConcat: elementwise x + y of two string tensors, with NumPy broadcasting.
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/broadcast.h"

namespace graft {
namespace {

class StringConcat final : public Kernel {
 public:
  explicit StringConcat(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (x.dtype() != DType::String || y.dtype() != DType::String) {
      ctx.fail("inputs must be string tensors");
    }
    const Shape shape = broadcast_shapes({x.shape(), y.shape()}, ctx.describe());
    Tensor& z = ctx.output(0, DType::String, shape);
    broadcast_map<std::string, std::string, std::string>(
        z, [](const std::string& a, const std::string& b) { return a + b; }, x, y);
  }
};

}  // namespace

GRAFT_CPU_KERNELS(string_concat) {
  reg.add({"", "StringConcat", 20, 1 << 30, {DType::String}, 0, make<StringConcat>});
}

}  // namespace graft
