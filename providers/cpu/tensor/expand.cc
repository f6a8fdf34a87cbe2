// Expand and Tile: repeat a tensor's elements by broadcasting or by tiling.
#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

class Expand final : public Kernel {
 public:
  explicit Expand(const KernelInfo&) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const StridedView view = expand_view(ctx, x.shape(), ctx.input(1));
    Tensor& y = ctx.output(0, x.dtype(), view.shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Expand", [&](auto tag) {
      using T = typename decltype(tag)::type;
      tensor_ops::strided_copy(y.data<T>(), x.data<T>(), view.shape, view.strides);
    });
  }
};

// Tile-1 repeats along one axis (inputs tiles and axis); from 6 on input 1 holds one repeat
// count per axis.
class Tile final : public Kernel {
 public:
  explicit Tile(const KernelInfo& info) : single_axis_(info.since_version() < 6) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const auto rank = static_cast<size_t>(x.rank());
    std::vector<int64_t> repeats;
    if (single_axis_) {
      repeats.assign(rank, 1);
      const int64_t axis = tensor_ops::normalize_axis(ctx, ctx.input(2).scalar_as_int(), x.rank());
      repeats[static_cast<size_t>(axis)] = ctx.input(1).scalar_as_int();
    } else {
      repeats = ctx.input(1).to_int_vector();
    }
    const Shape shape = tile_shape(ctx, x.shape(), repeats);
    // Read as [r0, d0, r1, d1, ...] with stride 0 on the repeat dims.
    const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(x.shape());
    Shape view;
    std::vector<int64_t> strides;
    for (size_t d = 0; d < rank; ++d) {
      view.insert(view.end(), {repeats[d], x.shape()[d]});
      strides.insert(strides.end(), {0, in_strides[d]});
    }
    Tensor& y = ctx.output(0, x.dtype(), shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Tile", [&](auto tag) {
      using T = typename decltype(tag)::type;
      tensor_ops::strided_copy(y.data<T>(), x.data<T>(), view, strides);
    });
  }

 private:
  bool single_axis_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_expand) {
  reg.add({"", "Expand", 8, 1 << 30, {}, 0, make<Expand>});
  reg.add({"", "Tile", 1, 1 << 30, {}, 0, make<Tile>});
}

}  // namespace graft
