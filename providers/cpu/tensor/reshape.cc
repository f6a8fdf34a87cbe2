// Ops that change only the shape: Reshape, Flatten, Squeeze, Unsqueeze, and Identity. Their
// outputs are views sharing the input's buffer.
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

using tensor_ops::normalize_axis;

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
    Shape shape(requested.size());
    int64_t infer = -1, known = 1;
    for (size_t i = 0; i < requested.size(); ++i) {
      int64_t d = requested[i];
      if (d == 0 && !allowzero_) {
        if (static_cast<int64_t>(i) >= x.rank()) {
          ctx.fail("shape entry " + std::to_string(i) + " is 0 but the input has rank " +
                   std::to_string(x.rank()));
        }
        d = x.dim(static_cast<int64_t>(i));
      } else if (d == -1) {
        if (infer >= 0) ctx.fail("shape has more than one -1");
        infer = static_cast<int64_t>(i);
        continue;
      } else if (d < 0) {
        ctx.fail("shape entry " + std::to_string(d) + " is negative");
      }
      shape[i] = d;
      known *= d;
    }
    if (infer >= 0) {
      if (known == 0) {
        if (x.size() != 0) ctx.fail("cannot infer the -1 dim next to a zero dim");
        shape[static_cast<size_t>(infer)] = 0;
      } else {
        if (x.size() % known != 0) {
          ctx.fail("cannot reshape " + shape_to_string(x.shape()) + " to " +
                   shape_to_string(requested));
        }
        shape[static_cast<size_t>(infer)] = x.size() / known;
      }
    }
    if (shape_size(shape) != x.size()) {
      ctx.fail("cannot reshape " + shape_to_string(x.shape()) + " to " +
               shape_to_string(requested));
    }
    ctx.set_output(0, x.reshaped(shape));
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
    if (axis_ < -x.rank() || axis_ > x.rank()) {
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for rank " +
               std::to_string(x.rank()));
    }
    const auto axis = static_cast<size_t>(axis_ < 0 ? axis_ + x.rank() : axis_);
    const Shape& s = x.shape();
    ctx.set_output(
        0, x.reshaped({tensor_ops::product(s, 0, axis), tensor_ops::product(s, axis, s.size())}));
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
    const std::vector<int64_t> axes = read_axes(ctx, axes_input_, axes_);
    std::vector<bool> drop(static_cast<size_t>(x.rank()), false);
    if (axes.empty()) {
      for (int64_t d = 0; d < x.rank(); ++d) drop[static_cast<size_t>(d)] = x.dim(d) == 1;
    }
    for (int64_t a : axes) {
      const int64_t axis = normalize_axis(ctx, a, x.rank());
      if (x.dim(axis) != 1) {
        ctx.fail("cannot squeeze axis " + std::to_string(a) + " of shape " +
                 shape_to_string(x.shape()));
      }
      drop[static_cast<size_t>(axis)] = true;
    }
    Shape shape;
    for (int64_t d = 0; d < x.rank(); ++d) {
      if (!drop[static_cast<size_t>(d)]) shape.push_back(x.dim(d));
    }
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
    const std::vector<int64_t> axes = read_axes(ctx, axes_input_, axes_);
    const int64_t rank = x.rank() + static_cast<int64_t>(axes.size());
    std::vector<bool> inserted(static_cast<size_t>(rank), false);
    for (int64_t a : axes) {
      const auto axis = static_cast<size_t>(normalize_axis(ctx, a, rank));
      if (inserted[axis]) ctx.fail("axis " + std::to_string(a) + " is repeated");
      inserted[axis] = true;
    }
    Shape shape;
    int64_t next = 0;
    for (int64_t d = 0; d < rank; ++d) {
      shape.push_back(inserted[static_cast<size_t>(d)] ? 1 : x.dim(next++));
    }
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
