// Indexed reads and writes: Gather, GatherElements and GatherND read elements or slices of data
// at indices; ScatterElements (and its old name Scatter) and ScatterND write a copy of data with
// updates at indices, replacing or combining (add, mul, max, min) with what is there. Indices
// (int32 or int64) stay on the device; negative ones count from the end.
//
// Out-of-range indices: the CPU provider fails with the node named. A device thread cannot
// throw, and checking would mean a flag in device memory that the host reads back after every
// launch, a synchronization per kernel (onnxruntime's CUDA Gather does not check either). So the
// device kernels stay memory-safe instead of failing: a gather clamps an out-of-range index into
// [0, dim - 1] and a scatter drops the update (XLA's rules). Shapes are still checked on the host
// and fail as on the CPU.
//
// Duplicate indices: without a reduction the spec leaves the result undefined (any one update
// wins). With one, updates to one element are combined in index order by one thread, no
// atomics, so results are deterministic and equal to the CPU provider's: ScatterElements gives
// each line along the axis a thread, ScatterND each element of a slice (its parallelism is the
// slice size; a ScatterND that addresses single elements runs on one thread).
#pragma once

#include "providers/cuda/kernels/movement.h"

namespace graft::cuda {

// f(TypeTag<I>{}) for the index dtypes, int32 and int64.
template <typename F>
decltype(auto) dispatch_index(DType dtype, const char* what, F&& f) {
  if (dtype == DType::Int32) return f(TypeTag<int32_t>{});
  if (dtype != DType::Int64) throw_unsupported_dtype(dtype, what);
  return f(TypeTag<int64_t>{});
}

// A gather's index into a dim of `dim` (> 0) elements, wrapped if negative and clamped.
GRAFT_HD int64_t gather_index(int64_t i, int64_t dim) {
  if (i < 0) i += dim;
  return i < 0 ? 0 : (i >= dim ? dim - 1 : i);
}

// A scatter's index, wrapped if negative; false when out of range (the update is dropped).
GRAFT_HD bool scatter_index(int64_t& i, int64_t dim) {
  if (i < 0) i += dim;
  return i >= 0 && i < dim;
}

// How a scatter combines the element there with an update, as the CPU provider does (through
// float for the 16-bit floats; for bool add and max are or, mul and min are and).
struct ScatterCombine {
  ScatterReduction reduction;
  template <typename T>
  GRAFT_HD T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bytes16_t>) {
      return b;  // moved whole: only reduction none reaches it
    } else if constexpr (std::is_same_v<T, bool>) {
      switch (reduction) {
        case ScatterReduction::Add:
        case ScatterReduction::Max:
          return a || b;
        case ScatterReduction::Mul:
        case ScatterReduction::Min:
          return a && b;
        default:
          return b;
      }
    } else {
      const Acc<T> x = widen(a), y = widen(b);
      switch (reduction) {
        case ScatterReduction::Add:
          return narrow<T>(x + y);
        case ScatterReduction::Mul:
          return narrow<T>(x * y);
        case ScatterReduction::Max:
          return x < y ? b : a;
        case ScatterReduction::Min:
          return y < x ? b : a;
        default:
          return b;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Functors.

// Output [outer, n, inner] from data [outer, dim, inner] and n indices.
template <typename T, typename I>
struct GatherFn {
  const T* data;
  const I* indices;
  T* y;
  int64_t dim;
  int64_t n;
  int64_t inner;
  GRAFT_HD void operator()(int64_t i) const {
    const int64_t o = i / (n * inner);
    const int64_t rest = i - o * n * inner;
    const int64_t j = rest / inner;
    const int64_t k = gather_index(static_cast<int64_t>(indices[j]), dim);
    y[i] = data[(o * dim + k) * inner + (rest - j * inner)];
  }
};

// GatherElements: output element p reads data at p with its axis coordinate replaced by
// indices[p]; `base` is p's data offset without the axis term.
template <typename T, typename I>
struct GatherElementsFn {
  const T* data;
  const I* indices;
  T* y;
  StridedIndex base;
  int64_t axis_stride;
  int64_t dim;
  GRAFT_HD void operator()(int64_t i) const {
    y[i] = data[base(i) + gather_index(static_cast<int64_t>(indices[i]), dim) * axis_stride];
  }
};

// The data offset index tuple `t` of GatherND or ScatterND addresses: the batch's offset, then k
// indices into dims[0, k) with strides[0, k). `ok` turns false when an index is out of range.
struct TupleOffset {
  int64_t k;
  int64_t tuples;  // tuples per batch
  int64_t batch_stride;
  int64_t dims[kMaxDims];
  int64_t strides[kMaxDims];
  template <typename I>
  GRAFT_HD int64_t gather(const I* indices, int64_t t) const {
    int64_t offset = (t / tuples) * batch_stride;
    for (int64_t j = 0; j < k; ++j) {
      offset += gather_index(static_cast<int64_t>(indices[t * k + j]), dims[j]) * strides[j];
    }
    return offset;
  }
  template <typename I>
  GRAFT_HD int64_t scatter(const I* indices, int64_t t, bool& ok) const {
    int64_t offset = 0;
    ok = true;
    for (int64_t j = 0; j < k; ++j) {
      int64_t i = static_cast<int64_t>(indices[t * k + j]);
      ok = ok && scatter_index(i, dims[j]);
      offset += i * strides[j];
    }
    return offset;
  }
};

template <typename T, typename I>
struct GatherNDFn {
  const T* data;
  const I* indices;
  T* y;
  int64_t slice;
  TupleOffset tuple;
  GRAFT_HD void operator()(int64_t i) const {
    const int64_t t = i / slice;
    y[i] = data[tuple.gather(indices, t) + (i - t * slice)];
  }
};

// ScatterElements without a reduction: one thread per update.
template <typename T, typename I>
struct ScatterElementsFn {
  const T* updates;
  const I* indices;
  T* y;
  StridedIndex base;
  int64_t axis_stride;
  int64_t dim;
  GRAFT_HD void operator()(int64_t i) const {
    int64_t k = static_cast<int64_t>(indices[i]);
    if (scatter_index(k, dim)) y[base(i) + k * axis_stride] = updates[i];
  }
};

// ScatterElements with a reduction: one thread per line of indices along the axis (every update
// a line holds lands in the same line of data), in order along it.
template <typename T, typename I>
struct ScatterElementsLineFn {
  const T* updates;
  const I* indices;
  T* y;
  StridedIndex line_updates;  // line -> offset of its first update
  StridedIndex line_data;     // line -> data offset without the axis term
  int64_t count;              // updates per line
  int64_t updates_stride;     // between them
  int64_t axis_stride;        // data's along the axis
  int64_t dim;
  ScatterCombine combine;
  GRAFT_HD void operator()(int64_t line) const {
    const int64_t first = line_updates(line), base = line_data(line);
    for (int64_t a = 0; a < count; ++a) {
      const int64_t u = first + a * updates_stride;
      int64_t k = static_cast<int64_t>(indices[u]);
      if (!scatter_index(k, dim)) continue;
      T& target = y[base + k * axis_stride];
      target = combine(target, updates[u]);
    }
  }
};

// ScatterND without a reduction: one thread per updated element.
template <typename T, typename I>
struct ScatterNDFn {
  const T* updates;
  const I* indices;
  T* y;
  int64_t slice;
  TupleOffset tuple;
  GRAFT_HD void operator()(int64_t i) const {
    const int64_t t = i / slice;
    bool ok = false;
    const int64_t offset = tuple.scatter(indices, t, ok);
    if (ok) y[offset + (i - t * slice)] = updates[i];
  }
};

// ScatterND with a reduction: one thread per element of a slice, through every tuple in order.
template <typename T, typename I>
struct ScatterNDReduceFn {
  const T* updates;
  const I* indices;
  T* y;
  int64_t slice;
  int64_t n;
  TupleOffset tuple;
  ScatterCombine combine;
  GRAFT_HD void operator()(int64_t e) const {
    for (int64_t t = 0; t < n; ++t) {
      bool ok = false;
      const int64_t offset = tuple.scatter(indices, t, ok);
      if (!ok) continue;
      T& target = y[offset + e];
      target = combine(target, updates[t * slice + e]);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Kernels.

template <class B>
class GatherKernel final : public DeviceKernel<B> {
 public:
  explicit GatherKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), axis_(info.attr_int("axis", 0)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    if (data.rank() == 0) ctx.fail("data must have rank >= 1");
    const int64_t axis = normalize_axis(ctx, axis_, data.rank());
    const int64_t dim = data.dim(axis);
    Tensor& y = ctx.output(0, data.dtype(), gather_shape(data.shape(), indices.shape(), axis));
    if (y.size() == 0) return;
    if (dim == 0) ctx.fail("cannot gather from axis " + std::to_string(axis) + " of size 0");
    const int64_t inner = shape_size(Shape(data.shape().begin() + axis + 1, data.shape().end()));
    dispatch_index(indices.dtype(), ctx.describe().c_str(), [&](auto index) {
      using I = typename decltype(index)::type;
      dispatch_device_bytes(data.dtype(), ctx.describe().c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        this->backend().for_each(y.size(), GatherFn<T, I>{data.data<T>(), indices.data<I>(),
                                                          y.data<T>(), dim, indices.size(), inner});
      });
    });
  }

 private:
  int64_t axis_;
};

// Data's row-major strides with the axis' stride set to 0, and that stride.
inline std::vector<int64_t> strides_off_axis(const Shape& data, int64_t axis,
                                             int64_t& axis_stride) {
  std::vector<int64_t> strides = contiguous_strides(data);
  axis_stride = strides[static_cast<size_t>(axis)];
  strides[static_cast<size_t>(axis)] = 0;
  return strides;
}

template <class B>
class GatherElementsKernel final : public DeviceKernel<B> {
 public:
  explicit GatherElementsKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), axis_(info.attr_int("axis", 0)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    if (data.rank() == 0) ctx.fail("data must have rank >= 1");
    const int64_t axis = normalize_axis(ctx, axis_, data.rank());
    check_elements_indices(ctx, data.shape(), indices.shape(), axis);
    Tensor& y = ctx.output(0, data.dtype(), indices.shape());
    if (y.size() == 0) return;
    const int64_t dim = data.dim(axis);
    if (dim == 0) ctx.fail("cannot gather from axis " + std::to_string(axis) + " of size 0");
    int64_t axis_stride = 0;
    const StridedIndex base = strided_index(
        indices.shape(), strides_off_axis(data.shape(), axis, axis_stride), ctx.describe());
    dispatch_index(indices.dtype(), ctx.describe().c_str(), [&](auto index) {
      using I = typename decltype(index)::type;
      dispatch_device_bytes(data.dtype(), ctx.describe().c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        this->backend().for_each(
            y.size(), GatherElementsFn<T, I>{data.data<T>(), indices.data<I>(), y.data<T>(), base,
                                             axis_stride, dim});
      });
    });
  }

 private:
  int64_t axis_;
};

// The TupleOffset of indices whose last dim k addresses data dims [first, first + k).
inline TupleOffset tuple_offset(const KernelContext& ctx, const Shape& data, int64_t first,
                                int64_t k, int64_t tuples, int64_t batch_stride) {
  if (k > kMaxDims) ctx.fail("index tuples of more than " + std::to_string(kMaxDims) + " entries");
  TupleOffset t{k, tuples > 0 ? tuples : 1, batch_stride, {}, {}};
  const std::vector<int64_t> strides = contiguous_strides(data);
  for (int64_t j = 0; j < k; ++j) {
    t.dims[j] = data[static_cast<size_t>(first + j)];
    t.strides[j] = strides[static_cast<size_t>(first + j)];
  }
  return t;
}

// GatherND-12 adds batch_dims.
template <class B>
class GatherNDKernel final : public DeviceKernel<B> {
 public:
  explicit GatherNDKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), batch_dims_(info.attr_int("batch_dims", 0)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const GatherNDGeometry g = gather_nd_geometry(ctx, data.shape(), indices.shape(), batch_dims_);
    Tensor& y = ctx.output(0, data.dtype(), g.shape);
    if (y.size() == 0) return;
    for (int64_t j = 0; j < g.k; ++j) {
      if (data.dim(batch_dims_ + j) == 0) ctx.fail("cannot gather from an axis of size 0");
    }
    const TupleOffset tuple =
        tuple_offset(ctx, data.shape(), batch_dims_, g.k, g.tuples, g.batch_stride);
    dispatch_index(indices.dtype(), ctx.describe().c_str(), [&](auto index) {
      using I = typename decltype(index)::type;
      dispatch_device_bytes(data.dtype(), ctx.describe().c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        this->backend().for_each(y.size(), GatherNDFn<T, I>{data.data<T>(), indices.data<I>(),
                                                            y.data<T>(), g.slice, tuple});
      });
    });
  }

 private:
  int64_t batch_dims_;
};

// Runs `body` with T the element type: its unsigned integer of the same size without a reduction,
// the number type itself with one.
template <typename F>
void dispatch_scatter(ScatterReduction reduction, DType dtype, const char* what, F&& body) {
  if (reduction == ScatterReduction::None) {
    dispatch_device_bytes(dtype, what, body);
  } else {
    dispatch_device_numeric(dtype, what, body);
  }
}

// Output 0 as a copy of data, for a scatter to write into.
template <class B>
Tensor& copy_of_data(B& backend, KernelContext& ctx, const Tensor& data) {
  Tensor& y = ctx.output(0, data.dtype(), data.shape());
  backend.copy(y.raw(), data.raw(), data.nbytes());
  return y;
}

template <class B>
class ScatterElementsKernel final : public DeviceKernel<B> {
 public:
  explicit ScatterElementsKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        axis_(info.attr_int("axis", 0)),
        reduction_(parse_scatter_reduction(info)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const Tensor& updates = ctx.input(2);
    if (data.rank() == 0) ctx.fail("data must have rank >= 1");
    if (indices.shape() != updates.shape()) ctx.fail("indices and updates differ in shape");
    if (updates.dtype() != data.dtype()) ctx.fail("updates and data differ in dtype");
    const int64_t axis = normalize_axis(ctx, axis_, data.rank());
    check_elements_indices(ctx, data.shape(), indices.shape(), axis);
    Tensor& y = copy_of_data(this->backend(), ctx, data);
    if (indices.size() == 0) return;
    const int64_t dim = data.dim(axis);
    int64_t axis_stride = 0;
    const std::vector<int64_t> strides = strides_off_axis(data.shape(), axis, axis_stride);
    // Lines along the axis: indices' shape with the axis dim 1.
    Shape lines = indices.shape();
    lines[static_cast<size_t>(axis)] = 1;
    const std::vector<int64_t> updates_strides = contiguous_strides(indices.shape());
    const StridedIndex base = strided_index(indices.shape(), strides, ctx.describe());
    const StridedIndex line_updates = strided_index(lines, updates_strides, ctx.describe());
    const StridedIndex line_data = strided_index(lines, strides, ctx.describe());
    dispatch_index(indices.dtype(), ctx.describe().c_str(), [&](auto index) {
      using I = typename decltype(index)::type;
      dispatch_scatter(reduction_, data.dtype(), ctx.describe().c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        if (reduction_ == ScatterReduction::None) {
          this->backend().for_each(indices.size(),
                                   ScatterElementsFn<T, I>{updates.data<T>(), indices.data<I>(),
                                                           y.data<T>(), base, axis_stride, dim});
        } else {
          this->backend().for_each(
              shape_size(lines),
              ScatterElementsLineFn<T, I>{updates.data<T>(), indices.data<I>(), y.data<T>(),
                                          line_updates, line_data, indices.dim(axis),
                                          updates_strides[static_cast<size_t>(axis)], axis_stride,
                                          dim, ScatterCombine{reduction_}});
        }
      });
    });
  }

 private:
  int64_t axis_;
  ScatterReduction reduction_;
};

template <class B>
class ScatterNDKernel final : public DeviceKernel<B> {
 public:
  explicit ScatterNDKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), reduction_(parse_scatter_reduction(info)) {}
  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const Tensor& updates = ctx.input(2);
    if (updates.dtype() != data.dtype()) ctx.fail("updates and data differ in dtype");
    const int64_t slice = scatter_nd_slice(ctx, data.shape(), indices.shape(), updates.shape());
    const int64_t k = indices.dim(indices.rank() - 1);
    const int64_t n = shape_size(Shape(indices.shape().begin(), indices.shape().end() - 1));
    Tensor& y = copy_of_data(this->backend(), ctx, data);
    if (n == 0 || slice == 0) return;
    const TupleOffset tuple = tuple_offset(ctx, data.shape(), 0, k, n, 0);
    dispatch_index(indices.dtype(), ctx.describe().c_str(), [&](auto index) {
      using I = typename decltype(index)::type;
      dispatch_scatter(reduction_, data.dtype(), ctx.describe().c_str(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        if (reduction_ == ScatterReduction::None) {
          this->backend().for_each(
              n * slice,
              ScatterNDFn<T, I>{updates.data<T>(), indices.data<I>(), y.data<T>(), slice, tuple});
        } else {
          this->backend().for_each(
              slice, ScatterNDReduceFn<T, I>{updates.data<T>(), indices.data<I>(), y.data<T>(),
                                             slice, n, tuple, ScatterCombine{reduction_}});
        }
      });
    });
  }

 private:
  ScatterReduction reduction_;
};

template <class B>
void register_gather(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  const std::vector<DType>& kMovable = kDeviceMovableTypes;
  reg.add({"", "Gather", 1, kAny, kMovable, 0, make<GatherKernel<B>>});
  reg.add({"", "GatherElements", 11, kAny, kMovable, 0, make<GatherElementsKernel<B>>});
  reg.add({"", "GatherND", 11, kAny, kMovable, 0, make<GatherNDKernel<B>>});
  // Without a reduction any dtype moves; with one, the kernel checks for a number type or bool.
  reg.add({"", "Scatter", 9, 10, kMovable, 0, make<ScatterElementsKernel<B>>});
  reg.add({"", "ScatterElements", 11, kAny, kMovable, 0, make<ScatterElementsKernel<B>>});
  reg.add({"", "ScatterND", 11, kAny, kMovable, 0, make<ScatterNDKernel<B>>});
}

}  // namespace graft::cuda
