// Pad: grows (or, with negative pads, crops) each axis; new elements are a constant, the
// reflection, the edge value or the wrapped-around values.
#include <algorithm>

#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Pad-1 and 2 take pads (named paddings in 1) and the value as attributes; 11 moves them to
// inputs 1 and 2; 18 adds input 3, the axes the pads apply to; 19 adds wrap.
class Pad final : public Kernel {
 public:
  explicit Pad(const KernelInfo& info)
      : attrs_(info.since_version() < 11), mode_(parse_pad_mode(info)) {
    if (attrs_) {
      pads_ = info.attr_ints(info.since_version() < 2 ? "paddings" : "pads");
      value_ = info.attr_float("value", 0.0f);
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    std::vector<int64_t> pads = attrs_ ? pads_ : ctx.input(1).to_int_vector();
    std::optional<std::vector<int64_t>> axes;
    if (!attrs_ && ctx.num_inputs() > 3 && ctx.has_input(3)) axes = ctx.input(3).to_int_vector();
    const PadGeometry geometry = pad_geometry(ctx, x.shape(), pads, axes, mode_);
    const Shape& shape = geometry.shape;
    const std::vector<int64_t>& begin = geometry.begin;

    Tensor& y = ctx.output(0, x.dtype(), shape);
    if (y.size() == 0) return;
    // Per axis, the source index of every output index, or -1 for the constant.
    std::vector<std::vector<int64_t>> source(static_cast<size_t>(rank));
    for (size_t d = 0; d < shape.size(); ++d) {
      const int64_t dim = x.shape()[d];
      source[d].resize(static_cast<size_t>(shape[d]));
      for (int64_t o = 0; o < shape[d]; ++o) {
        int64_t i = o - begin[d];
        if (i < 0 || i >= dim) i = pad_source(mode_, i, dim);
        source[d][static_cast<size_t>(o)] = i;
      }
    }

    const Tensor fill = constant(ctx, x);
    const std::vector<int64_t> strides = tensor_ops::contiguous_strides(x.shape());
    const int64_t inner = rank == 0 ? 1 : shape.back();
    const int64_t rows = y.size() / inner;
    tensor_ops::dispatch_copyable(x.dtype(), "Pad", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      const T value = fill.data<T>()[0];
      if (rank == 0) {
        dst[0] = src[0];
        return;
      }
      const std::vector<int64_t>& last = source.back();
      // Output columns [mid_begin, mid_end) copy a contiguous run of the source row.
      const int64_t mid_begin = std::clamp<int64_t>(begin.back(), 0, inner);
      const int64_t mid_end =
          std::clamp<int64_t>(begin.back() + x.shape().back(), mid_begin, inner);
#pragma omp parallel for if (y.size() > tensor_ops::kParallelElements)
      for (int64_t r = 0; r < rows; ++r) {
        int64_t rem = r, offset = 0;
        bool constant_row = false;
        for (size_t d = shape.size() - 1; d-- > 0;) {
          const int64_t i = source[d][static_cast<size_t>(rem % shape[d])];
          rem /= shape[d];
          if (i < 0) constant_row = true;
          offset += i * strides[d];
        }
        T* out = dst + r * inner;
        if (constant_row) {
          std::fill(out, out + inner, value);
          continue;
        }
        auto edge = [&](int64_t k) {
          const int64_t i = last[static_cast<size_t>(k)];
          out[k] = i < 0 ? value : src[offset + i];
        };
        for (int64_t k = 0; k < mid_begin; ++k) edge(k);
        const T* run = src + offset + (mid_begin - begin.back());
        std::copy(run, run + (mid_end - mid_begin), out + mid_begin);
        for (int64_t k = mid_end; k < inner; ++k) edge(k);
      }
    });
  }

 private:
  // A one-element tensor of x's dtype holding the pad value (zero when not given).
  Tensor constant(const KernelContext& ctx, const Tensor& x) const {
    Tensor value(x.dtype(), {1});
    if (attrs_) {
      dispatch_float(x.dtype(), "Pad", [&](auto tag) {
        using T = typename decltype(tag)::type;
        value.data<T>()[0] = T(value_);
      });
    } else if (ctx.num_inputs() > 2 && ctx.has_input(2)) {
      const Tensor& given = ctx.input(2);
      if (given.dtype() != x.dtype()) ctx.fail("constant_value and data differ in dtype");
      if (given.size() > 0) {
        tensor_ops::dispatch_copyable(x.dtype(), "Pad", [&](auto tag) {
          using T = typename decltype(tag)::type;
          value.data<T>()[0] = given.data<T>()[0];
        });
      }
    }
    return value;
  }

  bool attrs_;
  PadMode mode_;
  std::vector<int64_t> pads_;
  float value_ = 0.0f;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_pad) { reg.add({"", "Pad", 1, 1 << 30, {}, 0, make<Pad>}); }

}  // namespace graft
