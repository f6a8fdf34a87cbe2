// Slice: a strided window of a tensor, per the ONNX clamping rules.
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Slice-1 takes starts, ends and axes as attributes; from 10 on they are inputs 1 to 4, with
// steps.
class Slice final : public Kernel {
 public:
  explicit Slice(const KernelInfo& info) : attrs_(info.since_version() < 10) {
    if (attrs_) {
      starts_ = info.attr_ints("starts");
      ends_ = info.attr_ints("ends");
      axes_ = info.attr_ints("axes");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (!attrs_) {
      starts = ctx.input(1).to_int_vector();
      ends = ctx.input(2).to_int_vector();
      axes = tensor_ops::optional_ints(ctx, 3);
      steps = tensor_ops::optional_ints(ctx, 4);
    }
    if (starts.size() != ends.size()) ctx.fail("starts and ends differ in length");
    if (axes.empty()) {
      if (starts.size() > static_cast<size_t>(x.rank())) ctx.fail("more starts than axes");
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (axes.size() != starts.size() || steps.size() != starts.size()) {
      ctx.fail("starts, ends, axes and steps differ in length");
    }

    const auto rank = static_cast<size_t>(x.rank());
    const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(x.shape());
    Shape shape = x.shape();
    std::vector<int64_t> strides = in_strides;
    std::vector<bool> seen(rank, false);
    int64_t offset = 0;
    for (size_t i = 0; i < starts.size(); ++i) {
      const auto axis =
          static_cast<size_t>(tensor_ops::normalize_axis(ctx, axes[i], static_cast<int64_t>(rank)));
      if (seen[axis]) ctx.fail("axis " + std::to_string(axes[i]) + " is repeated");
      seen[axis] = true;
      const int64_t dim = x.dim(static_cast<int64_t>(axis)), step = steps[i];
      if (step == 0) ctx.fail("steps must not be 0");
      int64_t start = starts[i], end = ends[i];
      if (start < 0) start += dim;
      if (end < 0) end += dim;
      int64_t count = 0;
      if (step > 0) {
        start = std::clamp<int64_t>(start, 0, dim);
        end = std::clamp<int64_t>(end, 0, dim);
        if (end > start) count = (end - start - 1) / step + 1;
      } else if (dim > 0) {
        start = std::clamp<int64_t>(start, 0, dim - 1);
        end = std::clamp<int64_t>(end, -1, dim - 1);
        if (start > end) count = (start - end - 1) / -step + 1;
      }
      shape[axis] = count;
      strides[axis] = in_strides[axis] * step;
      if (count > 0) offset += start * in_strides[axis];
    }
    Tensor& y = ctx.output(0, x.dtype(), shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Slice", [&](auto tag) {
      using T = typename decltype(tag)::type;
      tensor_ops::strided_copy_into<T>(y, x, offset, strides);
    });
  }

 private:
  bool attrs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_slice) { reg.add({"", "Slice", 1, 1 << 30, {}, 0, make<Slice>}); }

}  // namespace graft
