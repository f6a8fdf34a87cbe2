// LayerNormalization and com.graft LayerNormGrad. X is seen as rows by cols, cols being the
// product of the normalized (trailing) dims. A row's statistics come from one reduce_rows pass
// (Welford's running mean and squared deviation, merged pairwise, so no sum of squares
// cancels); one thread per element then writes the output. The gradient folds the covariance
// of X and g = dY * Scale in the same way, so dX also takes a single reduction, and dScale, dB
// are reduce_rows over the columns.
#pragma once

#include <string>
#include <vector>

#include "exec/reduce_shapes.h"
#include "ir/names.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/reduce.h"

namespace graft::cuda {

// Count, mean and sum of squared deviations of the values seen, and of a second series g their
// mean and co-moment sum((x - mean_x) * (g - mean_g)). Pairs merge with Chan's formulas.
template <typename A>
struct Moments {
  A count;
  A mean;
  A m2;
  A mean_g;
  A cov;

  GRAFT_HD static Moments of(A x, A g) { return {A(1), x, A(0), g, A(0)}; }
  GRAFT_HD static Moments combine(Moments a, Moments b) {
    if (b.count == A(0)) return a;
    if (a.count == A(0)) return b;
    const A count = a.count + b.count;
    const A share = b.count / count;
    const A dx = b.mean - a.mean;
    const A dg = b.mean_g - a.mean_g;
    return {count, a.mean + dx * share, a.m2 + b.m2 + dx * dx * a.count * share,
            a.mean_g + dg * share, a.cov + b.cov + dx * dg * a.count * share};
  }
  // 1 / sqrt(population variance + epsilon); the variance of no values is 0.
  GRAFT_HD A inv_std(A epsilon) const {
    return A(1) / math_sqrt((count > A(0) ? m2 / count : A(0)) + epsilon);
  }
};

// Row statistics of LayerNormalization into `mean` and `inv_std` (type A), and into the Mean and
// InvStdDev outputs (stash type S) where the node asks for them.
template <typename T, typename S, typename A>
struct LayerNormStatsFn {
  using Acc = Moments<A>;
  const T* x;
  int64_t cols;
  A epsilon;
  A* mean;
  A* inv_std;
  S* mean_out;
  S* inv_std_out;
  GRAFT_HD Acc identity() const { return {A(0), A(0), A(0), A(0), A(0)}; }
  GRAFT_HD Acc load(int64_t r, int64_t j) const {
    return Acc::of(static_cast<A>(widen(x[r * cols + j])), A(0));
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return Acc::combine(a, b); }
  GRAFT_HD void store(int64_t r, Acc a) const {
    const A inv = a.inv_std(epsilon);
    mean[r] = a.mean;
    inv_std[r] = inv;
    if (mean_out != nullptr) mean_out[r] = narrow<S>(a.mean);
    if (inv_std_out != nullptr) inv_std_out[r] = narrow<S>(inv);
  }
};

// Y = (X - mean) * inv_std * Scale + B, Scale and B broadcast over the normalized dims.
template <typename T, typename A>
struct LayerNormApplyFn {
  const T* x;
  const T* scale;
  const T* bias;  // nullptr without B
  T* y;
  const A* mean;
  const A* inv_std;
  int64_t cols;
  StridedIndex scale_index;
  StridedIndex bias_index;
  GRAFT_HD void operator()(int64_t e) const {
    const int64_t r = e / cols;
    const int64_t j = e - r * cols;
    A v = (static_cast<A>(widen(x[e])) - mean[r]) * inv_std[r] *
          static_cast<A>(widen(scale[scale_index(j)]));
    if (bias != nullptr) v += static_cast<A>(widen(bias[bias_index(j)]));
    y[e] = narrow<T>(v);
  }
};

// LayerNormGrad, per row: mean, inv_std, mean(g) and mean(g * x_hat), with g = dY * Scale.
template <typename T>
struct LayerNormGradStatsFn {
  using Acc = Moments<cuda::Acc<T>>;
  using A = cuda::Acc<T>;
  const T* dy;
  const T* x;
  const T* scale;
  bool scalar_scale;
  int64_t cols;
  A epsilon;
  A* stats;  // 4 per row
  GRAFT_HD Acc identity() const { return {A(0), A(0), A(0), A(0), A(0)}; }
  GRAFT_HD Acc load(int64_t r, int64_t j) const {
    const int64_t k = r * cols + j;
    return Acc::of(widen(x[k]), widen(dy[k]) * widen(scale[scalar_scale ? 0 : j]));
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return Acc::combine(a, b); }
  GRAFT_HD void store(int64_t r, Acc a) const {
    const A inv = a.inv_std(epsilon);
    A* s = stats + 4 * r;
    s[0] = a.mean;
    s[1] = inv;
    s[2] = a.mean_g;
    // mean(g * x_hat) = inv_std * sum(g * (x - mean)) / n, and sum(g * (x - mean)) = cov.
    s[3] = a.count > A(0) ? a.cov * inv / a.count : A(0);
  }
};

// dX = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)).
template <typename T>
struct LayerNormGradFn {
  using A = Acc<T>;
  const T* dy;
  const T* x;
  const T* scale;
  bool scalar_scale;
  T* dx;
  const A* stats;
  int64_t cols;
  GRAFT_HD void operator()(int64_t e) const {
    const int64_t r = e / cols;
    const A* s = stats + 4 * r;
    const A g = widen(dy[e]) * widen(scale[scalar_scale ? 0 : e - r * cols]);
    const A x_hat = (widen(x[e]) - s[0]) * s[1];
    dx[e] = narrow<T>(s[1] * (g - s[2] - x_hat * s[3]));
  }
};

// dScale = sum over rows of dY * x_hat and dB = sum of dY: row j of this reduction is column j
// of X.
template <typename T>
struct LayerNormParamGradFn {
  using Acc = SumPair<cuda::Acc<T>>;
  using A = cuda::Acc<T>;
  const T* dy;
  const T* x;
  const A* stats;
  int64_t cols;
  T* dscale;  // nullptr when not asked for
  T* dbias;   // likewise
  GRAFT_HD Acc identity() const { return {A(0), A(0)}; }
  GRAFT_HD Acc load(int64_t j, int64_t r) const {
    const int64_t k = r * cols + j;
    const A g = widen(dy[k]);
    return {g * (widen(x[k]) - stats[4 * r]) * stats[4 * r + 1], g};
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return Acc::combine(a, b); }
  GRAFT_HD void store(int64_t j, Acc a) const {
    if (dscale != nullptr) dscale[j] = narrow<T>(a.first);
    if (dbias != nullptr) dbias[j] = narrow<T>(a.second);
  }
};

// Whether a parameter of shape `param` broadcasts to `shape` (NumPy rules, right-aligned).
inline bool broadcasts_to(const Shape& param, const Shape& shape) {
  if (param.size() > shape.size()) return false;
  const size_t lead = shape.size() - param.size();
  for (size_t d = 0; d < param.size(); ++d) {
    if (param[d] != 1 && param[d] != shape[lead + d]) return false;
  }
  return true;
}

// The stash types of LayerNormalization's Mean and InvStdDev.
template <typename F>
decltype(auto) dispatch_stash(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::Float:
      return f(TypeTag<float>{});
    case DType::Double:
      return f(TypeTag<double>{});
    case DType::BFloat16:
      return f(TypeTag<bfloat16_t>{});
    default:
      throw_unsupported_dtype(dtype, what);
  }
}

template <class B>
class LayerNormKernel final : public DeviceKernel<B> {
 public:
  explicit LayerNormKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        axis_(info.attr_int("axis", -1)),
        epsilon_(info.attr_float("epsilon", 1e-5f)),
        stash_(static_cast<DType>(info.attr_int("stash_type", 1))) {
    if (stash_ != DType::Float && stash_ != DType::BFloat16 && stash_ != DType::Double)
      info.fail("stash_type must be float, bfloat16 or double");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    const int64_t rank = x.rank();
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank)
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for rank " +
               std::to_string(rank));
    const Shape norm_shape(x.shape().begin() + axis, x.shape().end());
    if (!broadcasts_to(scale.shape(), norm_shape) ||
        (bias != nullptr && !broadcasts_to(bias->shape(), norm_shape)))
      ctx.fail("Scale and B must broadcast to the normalized shape " + shape_to_string(norm_shape));
    if (scale.dtype() != x.dtype() || (bias != nullptr && bias->dtype() != x.dtype()))
      ctx.fail("Scale and B must have X's element type");
    const AxisSplit split = split_at_axis(x.shape(), axis, true);
    const int64_t rows = split.outer, cols = split.n;
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    Shape stat_shape(x.shape().begin(), x.shape().begin() + axis);
    stat_shape.insert(stat_shape.end(), static_cast<size_t>(rank - axis), 1);
    Tensor* stat_out[2] = {nullptr, nullptr};
    for (int out = 1; out <= 2; ++out) {
      if (out < ctx.num_outputs() && ctx.has_output(out))
        stat_out[out - 1] = &ctx.output(out, stash_, stat_shape);
    }
    const StridedIndex scale_index = broadcast_index(scale.shape(), norm_shape, ctx.describe());
    const StridedIndex bias_index = broadcast_index(bias != nullptr ? bias->shape() : scale.shape(),
                                                    norm_shape, ctx.describe());
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      dispatch_stash(stash_, ctx.describe().c_str(), [&](auto stash_tag) {
        using S = typename decltype(stash_tag)::type;
        using A = std::conditional_t<std::is_same_v<T, double> || std::is_same_v<S, double>, double,
                                     float>;
        Tensor stats = scratch<A>(this->backend(), 2 * rows);
        A* mean = stats.data<A>();
        A* inv_std = mean + rows;
        this->backend().reduce_rows(
            rows, cols,
            LayerNormStatsFn<T, S, A>{
                x.data<T>(), cols, static_cast<A>(epsilon_), mean, inv_std,
                stat_out[0] != nullptr ? stat_out[0]->template data<S>() : nullptr,
                stat_out[1] != nullptr ? stat_out[1]->template data<S>() : nullptr});
        this->backend().for_each(
            y.size(), LayerNormApplyFn<T, A>{
                          x.data<T>(), scale.data<T>(), bias != nullptr ? bias->data<T>() : nullptr,
                          y.data<T>(), mean, inv_std, cols, scale_index, bias_index});
      });
    });
  }

 private:
  int64_t axis_;
  float epsilon_;
  DType stash_;
};

template <class B>
class LayerNormGradKernel final : public DeviceKernel<B> {
 public:
  explicit LayerNormGradKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        axes_(info.attr_ints("axes")),
        epsilon_(info.attr_float("epsilon", 1e-5f)) {
    if (axes_.empty()) info.fail("needs the normalized axes");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& scale = ctx.input(2);
    if (dy.shape() != x.shape() || dy.dtype() != x.dtype() || scale.dtype() != x.dtype())
      ctx.fail("dY, X and Scale must share X's shape and type");
    const int64_t first = trailing_axes_start(axes_, x.rank());
    if (first < 0) ctx.fail("axes must be the trailing axes of X, in increasing order");
    const AxisSplit split = split_at_axis(x.shape(), first, true);
    const int64_t rows = split.outer, cols = split.n;
    if (scale.size() != cols && scale.size() != 1)
      ctx.fail("Scale " + shape_to_string(scale.shape()) + " does not cover the normalized axes");
    const bool param_grads = ctx.has_output(1) || ctx.has_output(2);
    if (param_grads && scale.size() != cols)
      ctx.fail("dScale and dB need Scale " + shape_to_string(scale.shape()) +
               " to cover the normalized axes element by element");
    Tensor* dx = ctx.has_output(0) ? &ctx.output(0, x.dtype(), x.shape()) : nullptr;
    Tensor* dscale = ctx.has_output(1) ? &ctx.output(1, x.dtype(), scale.shape()) : nullptr;
    Tensor* dbias = ctx.has_output(2) ? &ctx.output(2, x.dtype(), scale.shape()) : nullptr;
    const bool scalar_scale = scale.size() == 1;
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using A = Acc<T>;
      Tensor stats = scratch<A>(this->backend(), 4 * rows);
      this->backend().reduce_rows(
          rows, cols,
          LayerNormGradStatsFn<T>{dy.data<T>(), x.data<T>(), scale.data<T>(), scalar_scale, cols,
                                  static_cast<A>(epsilon_), stats.data<A>()});
      if (dx != nullptr) {
        this->backend().for_each(
            dx->size(), LayerNormGradFn<T>{dy.data<T>(), x.data<T>(), scale.data<T>(), scalar_scale,
                                           dx->template data<T>(), stats.data<A>(), cols});
      }
      if (param_grads) {
        this->backend().reduce_rows(
            cols, rows,
            LayerNormParamGradFn<T>{dy.data<T>(), x.data<T>(), stats.data<A>(), cols,
                                    dscale != nullptr ? dscale->template data<T>() : nullptr,
                                    dbias != nullptr ? dbias->template data<T>() : nullptr});
      }
    });
  }

 private:
  std::vector<int64_t> axes_;
  float epsilon_;
};

template <class B>
void register_normalization(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "LayerNormalization", 17, kAny, kDeviceFloatTypes, 0, make<LayerNormKernel<B>>});
  reg.add({names::kDomain, "LayerNormGrad", 1, kAny, kDeviceFloatTypes, 0,
           make<LayerNormGradKernel<B>>});
}

}  // namespace graft::cuda
