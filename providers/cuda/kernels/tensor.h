// Data movement and shape ops: the views (Reshape, Flatten, Squeeze, Unsqueeze, Identity: the
// output shares the input's device buffer), the strided copies (Transpose, Slice, Expand, Tile),
// Concat, Split and Pad; register_tensor also registers the generators of generate.h (Range,
// ConstantOfShape, NonZero).
//
// Shapes, axes and attribute rules are exec/movement_shapes.h's, the ones the CPU provider uses.
// The inputs that hold them (a shape, axes, starts, pads, repeats, Range's scalars) are host
// inputs (KernelDef::host_inputs): the kernel reads them on the host, the partitioner leaves them
// in host memory.
#pragma once

#include <algorithm>
#include <cstring>
#include <optional>

#include "providers/cuda/kernels/generate.h"
#include "providers/cuda/kernels/movement.h"

namespace graft::cuda {

// ---------------------------------------------------------------------------------------------
// Functors the backend runs per element.

template <typename T>
struct StridedCopyFn {
  const T* x;
  T* y;
  StridedIndex ix;
  GRAFT_HD void operator()(int64_t i) const { y[i] = x[ix(i)]; }
};

// Copies rows of `row` elements: row r of src starts at r * src_row, of dst at r * dst_row
// (Concat writes its inputs into column ranges of the output, Split reads them).
template <typename T>
struct RowCopyFn {
  const T* src;
  T* dst;
  int64_t row;
  int64_t src_row;
  int64_t dst_row;
  GRAFT_HD void operator()(int64_t i) const {
    const int64_t r = i / row;
    const int64_t j = i - r * row;
    dst[r * dst_row + j] = src[r * src_row + j];
  }
};

// Output element (o0, o1, ...) of Tile reads input element (o0 % d0, o1 % d1, ...).
template <typename T>
struct TileFn {
  const T* x;
  T* y;
  Dims out;
  Dims in;
  GRAFT_HD void operator()(int64_t i) const {
    int64_t linear = i, offset = 0;
    for (int d = out.rank - 1; d >= 0; --d) {
      const int64_t q = linear / out.dims[d];
      offset += ((linear - q * out.dims[d]) % in.dims[d]) * in.strides[d];
      linear = q;
    }
    y[i] = x[offset];
  }
};

// The input index a padded position `i` outside [0, dim) reads, or -1 for the constant: the device
// copy of exec/movement_shapes.h's pad_source, which the host tests hold it to.
GRAFT_HD int64_t pad_index(PadMode mode, int64_t i, int64_t dim) {
  switch (mode) {
    case PadMode::Edge:
      return i < 0 ? 0 : dim - 1;
    case PadMode::Wrap:
      return ((i % dim) + dim) % dim;
    case PadMode::Reflect: {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      i = ((i % period) + period) % period;
      return i < dim ? i : period - i;
    }
    default:
      return -1;
  }
}

// Pad's constant is read on the device from `value_at` (the constant_value input) when given,
// else it is `value`.
template <typename T>
struct PadFn {
  const T* x;
  T* y;
  const T* value_at;
  T value;
  PadMode mode;
  Dims out;
  Dims in;
  int64_t begin[kMaxDims];
  GRAFT_HD void operator()(int64_t i) const {
    int64_t linear = i, offset = 0;
    for (int d = out.rank - 1; d >= 0; --d) {
      const int64_t q = linear / out.dims[d];
      int64_t s = linear - q * out.dims[d] - begin[d];
      linear = q;
      if (s < 0 || s >= in.dims[d]) {
        s = pad_index(mode, s, in.dims[d]);
        if (s < 0) {
          y[i] = value_at != nullptr ? *value_at : value;
          return;
        }
      }
      offset += s * in.strides[d];
    }
    y[i] = x[offset];
  }
};

// ---------------------------------------------------------------------------------------------
// Views.

// Reshape-1 takes the shape as an attribute, 5 and later as input 1; 14 adds allowzero.
template <class B>
class ReshapeKernel final : public DeviceKernel<B> {
 public:
  explicit ReshapeKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        shape_attr_(info.since_version() < 5),
        shape_(info.attr_ints("shape")),
        allowzero_(info.attr_int("allowzero", 0) != 0) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const std::vector<int64_t> requested = shape_attr_ ? shape_ : host_ints(ctx, 1);
    ctx.set_output(0, Value(x.reshaped(reshape_shape(ctx, x.shape(), requested, allowzero_))));
  }

 private:
  bool shape_attr_;
  std::vector<int64_t> shape_;
  bool allowzero_;
};

template <class B>
class FlattenKernel final : public DeviceKernel<B> {
 public:
  explicit FlattenKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), axis_(info.attr_int("axis", 1)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    ctx.set_output(0, Value(x.reshaped(flatten_shape(ctx, x.shape(), axis_))));
  }

 private:
  int64_t axis_;
};

// Squeeze and Unsqueeze take axes as an attribute before opset 13 and as input 1 from 13 on.
template <class B, bool Unsqueeze>
class SqueezeKernel final : public DeviceKernel<B> {
 public:
  explicit SqueezeKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        axes_input_(info.since_version() >= 13),
        axes_(info.attr_ints("axes")) {
    if (Unsqueeze && !axes_input_ && !info.has_attr("axes"))
      info.fail("attribute 'axes' is required");
  }
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (Unsqueeze && axes_input_ && !ctx.has_input(1)) ctx.fail("input 'axes' is required");
    const std::vector<int64_t> axes =
        axes_input_ ? optional_host_ints(ctx, 1).value_or(std::vector<int64_t>{}) : axes_;
    const Shape shape =
        Unsqueeze ? unsqueeze_shape(ctx, x.shape(), axes) : squeeze_shape(ctx, x.shape(), axes);
    ctx.set_output(0, Value(x.reshaped(shape)));
  }

 private:
  bool axes_input_;
  std::vector<int64_t> axes_;
};

template <class B>
class IdentityKernel final : public DeviceKernel<B> {
 public:
  explicit IdentityKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override { ctx.set_output(0, ctx.input_value(0)); }
};

// ---------------------------------------------------------------------------------------------
// Copies.

// Writes `view` of `x` into a new output 0: Transpose, Slice and Expand.
template <class B>
void copy_view(B& backend, KernelContext& ctx, const Tensor& x, const StridedView& view) {
  Tensor& y = ctx.output(0, x.dtype(), view.shape);
  if (y.size() == 0) return;
  const StridedIndex ix = collapsed_index(view, ctx.describe());
  dispatch_device_bytes(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    backend.for_each(y.size(), StridedCopyFn<T>{x.data<T>() + view.offset, y.data<T>(), ix});
  });
}

template <class B>
class TransposeKernel final : public DeviceKernel<B> {
 public:
  explicit TransposeKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), perm_(info.attr_ints("perm")) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    copy_view(this->backend(), ctx, x, transpose_view(ctx, x.shape(), perm_));
  }

 private:
  std::vector<int64_t> perm_;
};

// Slice-1 takes starts, ends and axes as attributes; from 10 on they are inputs 1 to 4, with
// steps.
template <class B>
class SliceKernel final : public DeviceKernel<B> {
 public:
  explicit SliceKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        attrs_(info.since_version() < 10),
        starts_(info.attr_ints("starts")),
        ends_(info.attr_ints("ends")),
        axes_(info.attr_ints("axes")) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    StridedView view;
    if (attrs_) {
      view = slice_view(ctx, x.shape(), starts_, ends_, axes_, {});
    } else {
      view = slice_view(ctx, x.shape(), host_ints(ctx, 1), host_ints(ctx, 2),
                        optional_host_ints(ctx, 3).value_or(std::vector<int64_t>{}),
                        optional_host_ints(ctx, 4).value_or(std::vector<int64_t>{}));
    }
    copy_view(this->backend(), ctx, x, view);
  }

 private:
  bool attrs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

template <class B>
class ExpandKernel final : public DeviceKernel<B> {
 public:
  explicit ExpandKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    copy_view(this->backend(), ctx, x, expand_view(ctx, x.shape(), ctx.input(1)));
  }
};

// Tile-1 repeats along one axis (inputs tiles and axis); from 6 on input 1 holds one repeat count
// per axis.
template <class B>
class TileKernel final : public DeviceKernel<B> {
 public:
  explicit TileKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), single_axis_(info.since_version() < 6) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> repeats;
    if (single_axis_) {
      repeats.assign(static_cast<size_t>(x.rank()), 1);
      const int64_t axis = normalize_axis(ctx, ctx.input(2).scalar_as_int(), x.rank());
      repeats[static_cast<size_t>(axis)] = ctx.input(1).scalar_as_int();
    } else {
      repeats = host_ints(ctx, 1);
    }
    Tensor& y = ctx.output(0, x.dtype(), tile_shape(ctx, x.shape(), repeats));
    if (y.size() == 0) return;
    const Dims out = dims_of(ctx, y.shape());
    const Dims in = dims_of(ctx, x.shape());
    dispatch_device_bytes(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().for_each(y.size(), TileFn<T>{x.data<T>(), y.data<T>(), out, in});
    });
  }

 private:
  bool single_axis_;
};

// Concat-1 defaults axis to 1; from 4 on the attribute is required.
template <class B>
class ConcatKernel final : public DeviceKernel<B> {
 public:
  explicit ConcatKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), axis_(info.attr_int("axis", 1)) {
    if (info.since_version() >= 4 && !info.has_attr("axis"))
      info.fail("attribute 'axis' is required");
  }
  void compute(KernelContext& ctx) override {
    std::vector<Tensor> parts;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      if (ctx.has_input(i)) parts.push_back(ctx.input(i));
    }
    if (parts.empty()) ctx.fail("no inputs");
    if (parts[0].rank() == 0) ctx.fail("cannot concatenate scalars");
    const int64_t axis = normalize_axis(ctx, axis_, parts[0].rank());
    Tensor& y = ctx.output(0, parts[0].dtype(), concat_shape(ctx, parts, axis));
    const Shape& shape = y.shape();
    const int64_t inner = shape_size(Shape(shape.begin() + axis + 1, shape.end()));
    const int64_t out_row = shape[static_cast<size_t>(axis)] * inner;
    dispatch_device_bytes(y.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      int64_t column = 0;
      for (const Tensor& part : parts) {
        const int64_t row = part.dim(axis) * inner;
        if (part.size() > 0) {
          this->backend().for_each(
              part.size(), RowCopyFn<T>{part.data<T>(), y.data<T>() + column, row, row, out_row});
        }
        column += row;
      }
    });
  }

 private:
  int64_t axis_;
};

// The split sizes come from input 1 in opsets 1 and 13+, from the attribute in 2 and 11. Without
// them the axis is cut into equal parts; Split-18's num_outputs allows a smaller last part.
template <class B>
class SplitKernel final : public DeviceKernel<B> {
 public:
  explicit SplitKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        version_(info.since_version()),
        axis_(info.attr_int("axis", 0)),
        split_attr_(info.attr_ints("split")),
        num_outputs_(info.num_outputs()) {
    if (version_ >= 18 && info.has_attr("num_outputs")) {
      if (info.attr_int("num_outputs", 0) != num_outputs_) {
        info.fail("num_outputs does not match the node's " + std::to_string(num_outputs_) +
                  " outputs");
      }
      uneven_ = true;
    }
  }
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() == 0) ctx.fail("cannot split a scalar");
    const int64_t axis = normalize_axis(ctx, axis_, x.rank());
    std::vector<int64_t> requested;
    if ((version_ == 1 || version_ >= 13) && ctx.has_input(1)) {
      requested = host_ints(ctx, 1);
    } else if (version_ < 13) {
      requested = split_attr_;
    }
    const std::vector<int64_t> sizes =
        split_sizes(ctx, x.dim(axis), std::move(requested), num_outputs_, uneven_);
    const int64_t inner = shape_size(Shape(x.shape().begin() + axis + 1, x.shape().end()));
    const int64_t in_row = x.dim(axis) * inner;
    dispatch_device_bytes(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      int64_t column = 0;
      for (int i = 0; i < num_outputs_; ++i) {
        Shape shape = x.shape();
        shape[static_cast<size_t>(axis)] = sizes[static_cast<size_t>(i)];
        const int64_t row = sizes[static_cast<size_t>(i)] * inner;
        if (ctx.has_output(i)) {
          Tensor& y = ctx.output(i, x.dtype(), shape);
          if (y.size() > 0) {
            this->backend().for_each(
                y.size(), RowCopyFn<T>{x.data<T>() + column, y.data<T>(), row, in_row, row});
          }
        }
        column += row;
      }
    });
  }

 private:
  int version_;
  int64_t axis_;
  std::vector<int64_t> split_attr_;
  int num_outputs_;
  bool uneven_ = false;
};

// Pad-1 and 2 take pads (named paddings in 1) and the value as attributes; 11 moves them to
// inputs 1 (a host input) and 2 (constant_value, read on the device); 18 adds input 3, the axes
// (a host input); 19 adds wrap.
template <class B>
class PadKernel final : public DeviceKernel<B> {
 public:
  explicit PadKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        attrs_(info.since_version() < 11),
        mode_(parse_pad_mode(info)),
        pads_(info.attr_ints(info.since_version() < 2 ? "paddings" : "pads")),
        value_(info.attr_float("value", 0.0f)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const PadGeometry g =
        attrs_ ? pad_geometry(ctx, x.shape(), pads_, std::nullopt, mode_)
               : pad_geometry(ctx, x.shape(), host_ints(ctx, 1), optional_host_ints(ctx, 3), mode_);
    const Tensor* given = !attrs_ && ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (given != nullptr && given->dtype() != x.dtype())
      ctx.fail("constant_value and data differ in dtype");
    if (given != nullptr && given->size() == 0) given = nullptr;
    Tensor& y = ctx.output(0, x.dtype(), g.shape);
    if (y.size() == 0) return;
    const Dims out = dims_of(ctx, g.shape);
    const Dims in = dims_of(ctx, x.shape());
    dispatch_device_bytes(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      PadFn<T> fn{x.data<T>(), y.data<T>(), given ? given->data<T>() : nullptr, T{}, mode_, out,
                  in,          {}};
      if (attrs_) fn.value = attribute_value<T>(ctx, x.dtype());
      std::copy(g.begin.begin(), g.begin.end(), fn.begin);
      this->backend().for_each(y.size(), fn);
    });
  }

 private:
  // Pad-1 and 2's value attribute as an element of `dtype` (a float type, as on the CPU), in
  // the unsigned integer T of its size.
  template <typename T>
  T attribute_value(const KernelContext& ctx, DType dtype) const {
    T bits{};
    dispatch_device_float(dtype, ctx.describe().c_str(), [&](auto tag) {
      using F = typename decltype(tag)::type;
      if constexpr (sizeof(F) == sizeof(T)) {
        const F v = narrow<F>(value_);
        std::memcpy(&bits, &v, sizeof(T));
      }
    });
    return bits;
  }

  bool attrs_;
  PadMode mode_;
  std::vector<int64_t> pads_;
  float value_;
};

template <class B>
void register_tensor(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  const std::vector<DType>& kMovable = kDeviceMovableTypes;
  reg.add({"", "Reshape", 1, kAny, kMovable, 0, make<ReshapeKernel<B>>, {1}});
  reg.add({"", "Flatten", 1, kAny, kMovable, 0, make<FlattenKernel<B>>});
  reg.add({"", "Squeeze", 1, kAny, kMovable, 0, make<SqueezeKernel<B, false>>, {1}});
  reg.add({"", "Unsqueeze", 1, kAny, kMovable, 0, make<SqueezeKernel<B, true>>, {1}});
  reg.add({"", "Identity", 1, kAny, kMovable, 0, make<IdentityKernel<B>>});
  reg.add({"", "Transpose", 1, kAny, kMovable, 0, make<TransposeKernel<B>>});
  reg.add({"", "Slice", 1, kAny, kMovable, 0, make<SliceKernel<B>>, {1, 2, 3, 4}});
  reg.add({"", "Expand", 8, kAny, kMovable, 0, make<ExpandKernel<B>>, {1}});
  reg.add({"", "Tile", 1, kAny, kMovable, 0, make<TileKernel<B>>, {1, 2}});
  reg.add({"", "Concat", 1, kAny, kMovable, 0, make<ConcatKernel<B>>});
  reg.add({"", "Split", 1, kAny, kMovable, 0, make<SplitKernel<B>>, {1}});
  reg.add({"", "Pad", 1, kAny, kMovable, 0, make<PadKernel<B>>, {1, 3}});
  const std::vector<DType> kRangeTypes = {DType::Float,   DType::Double, DType::Int16,
                                          DType::Int32,   DType::Int64,  DType::Float16,
                                          DType::BFloat16};
  reg.add({"", "Range", 11, kAny, kRangeTypes, 0, make<RangeKernel<B>>, {0, 1, 2}});
  reg.add({"", "ConstantOfShape", 9, kAny, {}, 0, make<ConstantOfShapeKernel<B>>, {0}});
  std::vector<DType> kNonZeroTypes = kDeviceNumberTypes;
  kNonZeroTypes.push_back(DType::Bool);
  reg.add({"", "NonZero", 9, kAny, kNonZeroTypes, 0, make<NonZeroKernel<B>>});
}

}  // namespace graft::cuda
