// Softmax and LogSoftmax along one axis, and com.graft SoftmaxGrad. The input is seen as
// [outer, n, inner] (from opset 13 around the single `axis`; before it coerced to 2-D at `axis`,
// so inner is 1): each of the outer * inner rows of n elements is one row of reduce_rows, which
// finds its max-shifted LogSumExp in one pass, then one thread per element writes the output.
#pragma once

#include <algorithm>
#include <string>

#include "exec/reduce_shapes.h"
#include "ir/names.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/reduce.h"

namespace graft::cuda {

// The rows of an [outer, n, inner] tensor along its middle axis: row r = o * inner + i holds
// the elements (o, j, i) for j in [0, n).
struct AxisRows {
  int64_t n;
  int64_t inner;
  GRAFT_HD int64_t operator()(int64_t r, int64_t j) const {
    const int64_t o = r / inner;
    return (o * n + j) * inner + (r - o * inner);
  }
  // The row of element e.
  GRAFT_HD int64_t row_of(int64_t e) const {
    const int64_t o = e / (n * inner);
    return o * inner + (e - o * n * inner) % inner;
  }
};

// Per row: for Softmax the shift subtracted before exp and the sum of the shifted exps; for
// LogSoftmax the row's LogSumExp (in `shift`).
template <typename T>
struct SoftmaxStatsFn {
  using Acc = LogSumExp<cuda::Acc<T>>;
  const T* x;
  cuda::Acc<T>* shift;
  cuda::Acc<T>* total;
  AxisRows rows;
  bool log;
  GRAFT_HD Acc identity() const { return Acc::identity(); }
  GRAFT_HD Acc load(int64_t r, int64_t j) const { return Acc::of(widen(x[rows(r, j)])); }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return Acc::combine(a, b); }
  GRAFT_HD void store(int64_t r, Acc a) const {
    if (log) {
      shift[r] = a.value();
    } else {
      shift[r] = a.shift();
      total[r] = a.total();
    }
  }
};

template <typename T, bool Log>
struct SoftmaxApplyFn {
  const T* x;
  T* y;
  const Acc<T>* shift;
  const Acc<T>* total;
  AxisRows rows;
  GRAFT_HD void operator()(int64_t e) const {
    const int64_t r = rows.row_of(e);
    const Acc<T> v = widen(x[e]) - shift[r];
    y[e] = narrow<T>(Log ? v : math_exp(v) / total[r]);
  }
};

// SoftmaxGrad: per row the dot product of dY and Y, then dX = Y * (dY - dot).
template <typename T>
struct DotRowsFn {
  using Acc = cuda::Acc<T>;
  const T* dy;
  const T* y;
  Acc* dot;
  AxisRows rows;
  GRAFT_HD Acc identity() const { return Acc(0); }
  GRAFT_HD Acc load(int64_t r, int64_t j) const {
    const int64_t k = rows(r, j);
    return widen(dy[k]) * widen(y[k]);
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return a + b; }
  GRAFT_HD void store(int64_t r, Acc a) const { dot[r] = a; }
};

template <typename T>
struct SoftmaxGradFn {
  const T* dy;
  const T* y;
  T* dx;
  const Acc<T>* dot;
  AxisRows rows;
  GRAFT_HD void operator()(int64_t e) const {
    dx[e] = narrow<T>(widen(y[e]) * (widen(dy[e]) - dot[rows.row_of(e)]));
  }
};

template <class B, bool Log>
class SoftmaxKernel final : public DeviceKernel<B> {
 public:
  explicit SoftmaxKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        flatten_(info.since_version() < 13),
        axis_(info.attr_int("axis", flatten_ ? 1 : -1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    // A scalar is a single element along axis 0.
    const int64_t axis = axis_ < 0 ? axis_ + std::max<int64_t>(rank, 1) : axis_;
    if (axis < 0 || axis >= std::max<int64_t>(rank, 1) + (flatten_ ? 1 : 0))
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for rank " +
               std::to_string(rank));
    const AxisSplit split = split_at_axis(x.shape(), axis, flatten_);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    if (y.size() == 0) return;
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using A = Acc<T>;
      const AxisRows rows{split.n, split.inner};
      const int64_t num_rows = split.outer * split.inner;
      Tensor stats = scratch<A>(this->backend(), 2 * num_rows);
      A* shift = stats.data<A>();
      A* total = shift + num_rows;
      this->backend().reduce_rows(num_rows, split.n,
                                  SoftmaxStatsFn<T>{x.data<T>(), shift, total, rows, Log});
      this->backend().for_each(
          y.size(), SoftmaxApplyFn<T, Log>{x.data<T>(), y.data<T>(), shift, total, rows});
    });
  }

 private:
  bool flatten_;  // opsets before 13
  int64_t axis_;
};

template <class B>
class SoftmaxGradKernel final : public DeviceKernel<B> {
 public:
  explicit SoftmaxGradKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), axis_(info.attr_int("axis", -1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (dy.shape() != y.shape())
      ctx.fail("dY " + shape_to_string(dy.shape()) + " and Y " + shape_to_string(y.shape()) +
               " differ");
    if (dy.dtype() != y.dtype()) ctx.fail("dY and Y differ in element type");
    const int64_t rank = y.rank();
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank) ctx.fail("axis " + std::to_string(axis_) + " is out of range");
    const AxisSplit split = split_at_axis(y.shape(), axis, false);
    Tensor& dx = ctx.output(0, y.dtype(), y.shape());
    if (dx.size() == 0) return;
    dispatch_device_float(y.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using A = Acc<T>;
      const AxisRows rows{split.n, split.inner};
      const int64_t num_rows = split.outer * split.inner;
      Tensor dot = scratch<A>(this->backend(), num_rows);
      this->backend().reduce_rows(num_rows, split.n,
                                  DotRowsFn<T>{dy.data<T>(), y.data<T>(), dot.data<A>(), rows});
      this->backend().for_each(dx.size(), SoftmaxGradFn<T>{dy.data<T>(), y.data<T>(), dx.data<T>(),
                                                           dot.data<A>(), rows});
    });
  }

 private:
  int64_t axis_;
};

template <class B>
void register_softmax(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "Softmax", 1, kAny, kDeviceFloatTypes, 0, make<SoftmaxKernel<B, false>>});
  reg.add({"", "LogSoftmax", 1, kAny, kDeviceFloatTypes, 0, make<SoftmaxKernel<B, true>>});
  reg.add(
      {names::kDomain, "SoftmaxGrad", 1, kAny, kDeviceFloatTypes, 0, make<SoftmaxGradKernel<B>>});
}

}  // namespace graft::cuda
