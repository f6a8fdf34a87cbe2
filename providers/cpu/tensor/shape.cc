// Shape and Size: a tensor's dims or element count as int64 tensors.
#include <algorithm>

#include "exec/kernel.h"

namespace graft {
namespace {

// Shape-15 adds the start and end attributes, clamped to [0, rank] after adding rank to
// negative values.
class ShapeOp final : public Kernel {
 public:
  explicit ShapeOp(const KernelInfo& info)
      : start_(info.attr_int("start", 0)),
        has_end_(info.has_attr("end")),
        end_(info.attr_int("end", 0)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    auto clamp = [rank](int64_t i) { return std::clamp(i < 0 ? i + rank : i, int64_t{0}, rank); };
    const int64_t begin = clamp(start_);
    const int64_t end = has_end_ ? clamp(end_) : rank;
    const int64_t count = std::max<int64_t>(end - begin, 0);
    Tensor& y = ctx.output(0, DType::Int64, {count});
    std::copy(x.shape().begin() + begin, x.shape().begin() + begin + count, y.data<int64_t>());
  }

 private:
  int64_t start_;
  bool has_end_;
  int64_t end_;
};

class Size final : public Kernel {
 public:
  explicit Size(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const int64_t size = ctx.input(0).size();
    ctx.output(0, DType::Int64, {}).data<int64_t>()[0] = size;
  }
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_shape) {
  reg.add({"", "Shape", 1, 1 << 30, {}, 0, make<ShapeOp>, {}, {0}});
  reg.add({"", "Size", 1, 1 << 30, {}, 0, make<Size>, {}, {0}});
}

}  // namespace graft
