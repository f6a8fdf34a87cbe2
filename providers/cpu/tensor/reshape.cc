// Ops that change only the shape: Reshape, Flatten, Squeeze, Unsqueeze, and Identity. Their
// outputs are views sharing the input's buffer.
#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Reshape-1 takes the shape as an attribute, 5 and later as input 1; 14 adds allowzero.
class Reshape final : public Kernel {
 public:
  explicit Reshape(const KernelInfo& info)
      : shape_attr_(info.since_version() < 5), allowzero_(info.attr_int("allowzero", 0) != 0) {
    if (shape_attr_) shape_ = info.attr_ints("shape");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const std::vector<int64_t> requested = shape_attr_ ? shape_ : ctx.input(1).to_int_vector();
    ctx.set_output(0, x.reshaped(reshape_shape(ctx, x.shape(), requested, allowzero_)));
  }

 private:
  bool shape_attr_;
  bool allowzero_;
  std::vector<int64_t> shape_;
};

class Flatten final : public Kernel {
 public:
  explicit Flatten(const KernelInfo& info) : axis_(info.attr_int("axis", 1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    ctx.set_output(0, x.reshaped(flatten_shape(ctx, x.shape(), axis_)));
  }

 private:
  int64_t axis_;
};

// Axes come from the attribute before opset 13 and from input 1 from 13 on.
std::vector<int64_t> read_axes(const KernelContext& ctx, bool axes_input,
                               const std::vector<int64_t>& attr) {
  if (!axes_input) return attr;
  return tensor_ops::optional_ints(ctx, 1);
}

class Squeeze final : public Kernel {
 public:
  explicit Squeeze(const KernelInfo& info)
      : axes_input_(info.since_version() >= 13), axes_(info.attr_ints("axes")) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Shape shape = squeeze_shape(ctx, x.shape(), read_axes(ctx, axes_input_, axes_));
    ctx.set_output(0, x.reshaped(shape));
  }

 private:
  bool axes_input_;
  std::vector<int64_t> axes_;
};

class Unsqueeze final : public Kernel {
 public:
  explicit Unsqueeze(const KernelInfo& info)
      : axes_input_(info.since_version() >= 13), axes_(info.attr_ints("axes")) {
    if (!axes_input_ && !info.has_attr("axes")) info.fail("attribute 'axes' is required");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (axes_input_ && !ctx.has_input(1)) ctx.fail("input 'axes' is required");
    const Shape shape = unsqueeze_shape(ctx, x.shape(), read_axes(ctx, axes_input_, axes_));
    ctx.set_output(0, x.reshaped(shape));
  }

 private:
  bool axes_input_;
  std::vector<int64_t> axes_;
};

// Passes any value through: a tensor, a sequence or an optional.
class Identity final : public Kernel {
 public:
  explicit Identity(const KernelInfo&) {}
  void compute(KernelContext& ctx) override { ctx.set_output(0, ctx.input_value(0)); }
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_reshape) {
  reg.add({"", "Reshape", 1, 1 << 30, {}, 0, make<Reshape>});
  reg.add({"", "Flatten", 1, 1 << 30, {}, 0, make<Flatten>});
  reg.add({"", "Squeeze", 1, 1 << 30, {}, 0, make<Squeeze>});
  reg.add({"", "Unsqueeze", 1, 1 << 30, {}, 0, make<Unsqueeze>});
  reg.add({"", "Identity", 1, 1 << 30, {}, 0, make<Identity>});
}

}  // namespace graft
