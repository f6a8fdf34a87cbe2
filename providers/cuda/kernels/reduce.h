// Reductions over any set of axes: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare, and ArgMax / ArgMin. Each
// output element is one row of reduce_rows: the input is read in place as [kept, reduced] (the
// kept dims in output order index the rows, the reduced dims the columns), never transposed.
// Results follow the CPU provider's: 16-bit floats accumulate in float, integers sum in wrapping
// 64-bit arithmetic, NaN wins a max or min, and empty axes reduce everything unless
// noop_with_empty_axes is set.
//
// Also here, for softmax.h and loss.h: LogSumExp, the one-pass, max-shifted log(sum(exp(x))).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "exec/reduce_shapes.h"
#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

// The input of a reduction as a matrix: element (r, j) is at rows(r) + cols(j).
struct ReduceView {
  int64_t num_rows = 1;
  int64_t num_cols = 1;
  StridedIndex rows;
  StridedIndex cols;
  GRAFT_HD int64_t operator()(int64_t r, int64_t j) const { return rows(r) + cols(j); }
};

// A contiguous tensor of `shape` reduced over `axes` (normalized). Dims of 1 are dropped and
// neighbouring dims on the same side merged, so most views index one or two dims per side.
// Throws InvalidArgument naming `who` when a side still has more than kMaxDims dims.
inline ReduceView reduce_view(const Shape& shape, const std::vector<int64_t>& axes,
                              const std::string& who) {
  const std::vector<int64_t> strides = contiguous_strides(shape);
  Shape dims[2];
  std::vector<int64_t> steps[2];
  int previous = -1;  // side of the last dim kept in the view
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int side = std::count(axes.begin(), axes.end(), static_cast<int64_t>(d)) ? 1 : 0;
    if (side == previous) {
      dims[side].back() *= shape[d];
      steps[side].back() = strides[d];
    } else {
      dims[side].push_back(shape[d]);
      steps[side].push_back(strides[d]);
    }
    previous = side;
  }
  ReduceView view;
  view.num_rows = shape_size(dims[0]);
  view.num_cols = shape_size(dims[1]);
  view.rows = strided_index(dims[0], steps[0], who);
  view.cols = strided_index(dims[1], steps[1], who);
  return view;
}

// Device scratch of `count` values of A (float or double), released in stream order when the
// tensor goes.
template <typename A, class B>
Tensor scratch(B& backend, int64_t count) {
  return Tensor::empty(std::is_same_v<A, double> ? DType::Double : DType::Float, {count},
                       backend.allocator());
}

// ---------------------------------------------------------------------------------------------
// The largest and smallest values of A, infinities for floats (std::numeric_limits is host-only
// under nvcc).

template <typename A>
GRAFT_HD A highest() {
  if constexpr (std::is_floating_point_v<A>) {
    return static_cast<A>(bits_as_float(0x7f800000u));
  } else if constexpr (std::is_same_v<A, bool>) {
    return true;
  } else {
    using U = std::make_unsigned_t<A>;
    const U all = static_cast<U>(~U(0));
    return static_cast<A>(std::is_signed_v<A> ? static_cast<U>(all >> 1) : all);
  }
}

template <typename A>
GRAFT_HD A lowest() {
  if constexpr (std::is_floating_point_v<A>) {
    return -highest<A>();
  } else if constexpr (std::is_signed_v<A>) {
    return static_cast<A>(-highest<A>() - 1);
  } else {
    return A(0);
  }
}

template <typename A>
GRAFT_HD bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>)
    return math_isnan(v);
  else
    return false;
}

// ---------------------------------------------------------------------------------------------
// What each Reduce* op folds, for inputs of type T: the accumulator A, its identity, one element's
// contribution, the combination of two partial results, and the output value.

// Integers accumulate sums and products as wrapping 64-bit unsigned values (NumPy's fixed-width
// overflow); floats in Acc<T>.
template <typename T>
using SumAcc = std::conditional_t<std::is_integral_v<T>, uint64_t, Acc<T>>;

template <typename T>
struct SumOp {
  using A = SumAcc<T>;
  GRAFT_HD A identity() const { return A(0); }
  GRAFT_HD A load(T v) const { return static_cast<A>(widen(v)); }
  GRAFT_HD A combine(A a, A b) const { return a + b; }
  GRAFT_HD T finish(A a) const { return narrow<T>(a); }
};

template <typename T>
struct MeanOp : SumOp<T> {
  using A = SumAcc<T>;
  int64_t count;
  GRAFT_HD T finish(A a) const {
    if constexpr (std::is_floating_point_v<A>) {
      return narrow<T>(a / static_cast<A>(count));
    } else if constexpr (std::is_signed_v<T>) {
      return count == 0 ? T(0) : static_cast<T>(static_cast<int64_t>(a) / count);
    } else {
      return count == 0 ? T(0) : static_cast<T>(a / static_cast<uint64_t>(count));
    }
  }
};

template <typename T>
struct ProdOp : SumOp<T> {
  using A = SumAcc<T>;
  GRAFT_HD A identity() const { return A(1); }
  GRAFT_HD A combine(A a, A b) const { return a * b; }
};

template <typename T>
struct L1Op : SumOp<T> {
  using A = SumAcc<T>;
  GRAFT_HD A load(T v) const {
    if constexpr (std::is_floating_point_v<A>)
      return math_fabs(static_cast<A>(widen(v)));
    else if constexpr (std::is_signed_v<T>)
      return v < T(0) ? A(0) - static_cast<A>(v) : static_cast<A>(v);
    else
      return static_cast<A>(v);
  }
};

template <typename T>
struct SumSquareOp : SumOp<T> {
  using A = SumAcc<T>;
  GRAFT_HD A load(T v) const {
    const A a = static_cast<A>(widen(v));
    return a * a;
  }
};

template <typename T>
struct L2Op : SumSquareOp<T> {
  using A = SumAcc<T>;
  GRAFT_HD T finish(A a) const {
    if constexpr (std::is_floating_point_v<A>)
      return narrow<T>(math_sqrt(a));
    else
      return static_cast<T>(math_sqrt(static_cast<double>(a)));
  }
};

template <typename T>
struct LogSumOp : SumOp<T> {
  using A = SumAcc<T>;
  GRAFT_HD T finish(A a) const { return narrow<T>(math_log(a)); }
};

// Max and Min: a NaN, once met, is the result (as NumPy and the CPU provider have it).
template <typename T, bool Max>
struct ExtremeOp {
  using A = Acc<T>;
  GRAFT_HD A identity() const { return Max ? lowest<A>() : highest<A>(); }
  GRAFT_HD A load(T v) const { return widen(v); }
  GRAFT_HD A combine(A a, A b) const {
    if (is_nan(a)) return a;
    if (is_nan(b)) return b;
    return (Max ? a < b : b < a) ? b : a;
  }
  GRAFT_HD T finish(A a) const { return narrow<T>(a); }
};

// log(sum(exp(x))) in one pass: the largest value m so far and s = sum(exp(x - m)). A NaN makes
// the result NaN; an infinite m makes it m (all -inf, or some +inf), as the max-shifted
// two-pass form the CPU provider uses gives.
template <typename A>
struct LogSumExp {
  A max;
  A sum;

  GRAFT_HD static LogSumExp identity() { return {lowest<A>(), A(0)}; }
  GRAFT_HD static LogSumExp of(A v) { return {v, A(1)}; }
  GRAFT_HD static LogSumExp combine(LogSumExp a, LogSumExp b) {
    if (math_isnan(a.max)) return a;
    if (math_isnan(b.max)) return b;
    const LogSumExp& hi = a.max < b.max ? b : a;
    const LogSumExp& lo = a.max < b.max ? a : b;
    if (hi.max == highest<A>() || hi.max == lowest<A>()) return {hi.max, A(0)};
    return {hi.max, hi.sum + lo.sum * math_exp(lo.max - hi.max)};
  }
  // What softmax subtracts from x before exp, and the sum of those exps.
  GRAFT_HD A shift() const { return max == highest<A>() || max == lowest<A>() ? A(0) : max; }
  GRAFT_HD A total() const {
    if (max == highest<A>()) return max;
    return max == lowest<A>() ? A(0) : sum;
  }
  GRAFT_HD A value() const { return shift() + math_log(total()); }
};

template <typename T>
struct LogSumExpOp {
  using A = LogSumExp<Acc<T>>;
  GRAFT_HD A identity() const { return A::identity(); }
  GRAFT_HD A load(T v) const { return A::of(widen(v)); }
  GRAFT_HD A combine(A a, A b) const { return A::combine(a, b); }
  GRAFT_HD T finish(A a) const { return narrow<T>(a.value()); }
};

// Two sums folded side by side.
template <typename A>
struct SumPair {
  A first;
  A second;
  GRAFT_HD static SumPair combine(SumPair a, SumPair b) {
    return {a.first + b.first, a.second + b.second};
  }
};

// The reduce_rows functor of a Reduce* op: row r of the view gives y[r].
template <typename T, typename Op>
struct ReduceRowsFn {
  using Acc = typename Op::A;
  const T* x;
  T* y;
  ReduceView view;
  Op op;
  GRAFT_HD Acc identity() const { return op.identity(); }
  GRAFT_HD Acc load(int64_t r, int64_t j) const { return op.load(x[view(r, j)]); }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return op.combine(a, b); }
  GRAFT_HD void store(int64_t r, Acc a) const { y[r] = op.finish(a); }
};

// The best value so far and its column; index -1 before the first.
template <typename A>
struct ArgBest {
  A value;
  int64_t index;
};

// ArgMax / ArgMin: the first extreme column, or the last with select_last_index; the first NaN
// beats any number.
template <typename T, bool Max>
struct ArgReduceFn {
  using Acc = ArgBest<cuda::Acc<T>>;
  const T* x;
  int64_t* y;
  ReduceView view;
  bool select_last;
  GRAFT_HD Acc identity() const { return {cuda::Acc<T>(0), -1}; }
  GRAFT_HD Acc load(int64_t r, int64_t j) const { return {widen(x[view(r, j)]), j}; }
  GRAFT_HD Acc combine(Acc a, Acc b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    const bool a_nan = is_nan(a.value), b_nan = is_nan(b.value);
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan) {
      if (Max ? a.value < b.value : b.value < a.value) return b;
      if (Max ? b.value < a.value : a.value < b.value) return a;
      if (select_last) return a.index < b.index ? b : a;
    }
    return a.index < b.index ? a : b;
  }
  GRAFT_HD void store(int64_t r, Acc a) const { y[r] = a.index; }
};

// ---------------------------------------------------------------------------------------------
// Kernels.

enum class ReduceKind { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

template <class B>
class ReduceKernel final : public DeviceKernel<B> {
 public:
  ReduceKernel(const KernelInfo& info, ReduceKind kind, bool axes_from_input)
      : DeviceKernel<B>(info),
        kind_(kind),
        axes_from_input_(axes_from_input),
        keepdims_(info.attr_int("keepdims", 1) != 0),
        noop_with_empty_axes_(info.attr_int("noop_with_empty_axes", 0) != 0),
        axes_(info.attr_ints("axes")) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && ctx.has_input(1)) {
      const Tensor& given = ctx.input(1);
      if (given.buffer() && !given.buffer()->on_host()) ctx.fail("axes must be in host memory");
      axes = given.to_int_vector();
    }
    // Reducing over no axis with an identity element transform is the input itself.
    const bool identity = kind_ == ReduceKind::Sum || kind_ == ReduceKind::Mean ||
                          kind_ == ReduceKind::Max || kind_ == ReduceKind::Min ||
                          kind_ == ReduceKind::Prod;
    if (axes.empty() && noop_with_empty_axes_ && identity && x.dtype() != DType::Bool) {
      ctx.set_output(0, ctx.input_value(0));
      return;
    }
    if (!resolve_reduce_axes(axes, x.rank(), noop_with_empty_axes_))
      ctx.fail("axes out of range for an input of shape " + shape_to_string(x.shape()));
    Tensor& y = ctx.output(0, x.dtype(), reduced_shape(x.shape(), axes, keepdims_));
    const ReduceView view = reduce_view(x.shape(), axes, ctx.describe());
    dispatch_device_numeric(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bool>) {
        if (kind_ == ReduceKind::Max) return run<T>(view, x, y, ExtremeOp<T, true>{});
        if (kind_ == ReduceKind::Min) return run<T>(view, x, y, ExtremeOp<T, false>{});
        ctx.fail("bool inputs are supported by ReduceMax and ReduceMin only");
      } else {
        run_number<T>(ctx, view, x, y);
      }
    });
  }

 private:
  template <typename T>
  void run_number(KernelContext& ctx, const ReduceView& view, const Tensor& x, Tensor& y) {
    switch (kind_) {
      case ReduceKind::Sum:
        return run<T>(view, x, y, SumOp<T>{});
      case ReduceKind::Mean:
        return run<T>(view, x, y, MeanOp<T>{{}, view.num_cols});
      case ReduceKind::Max:
        return run<T>(view, x, y, ExtremeOp<T, true>{});
      case ReduceKind::Min:
        return run<T>(view, x, y, ExtremeOp<T, false>{});
      case ReduceKind::Prod:
        return run<T>(view, x, y, ProdOp<T>{});
      case ReduceKind::L1:
        return run<T>(view, x, y, L1Op<T>{});
      case ReduceKind::L2:
        return run<T>(view, x, y, L2Op<T>{});
      case ReduceKind::SumSquare:
        return run<T>(view, x, y, SumSquareOp<T>{});
      case ReduceKind::LogSum:
      case ReduceKind::LogSumExp:
        if constexpr (std::is_integral_v<T>) {
          ctx.fail("this reduction needs a floating-point input");
        } else {
          if (kind_ == ReduceKind::LogSum) return run<T>(view, x, y, LogSumOp<T>{});
          return run<T>(view, x, y, LogSumExpOp<T>{});
        }
    }
  }

  template <typename T, typename Op>
  void run(const ReduceView& view, const Tensor& x, Tensor& y, Op op) {
    this->backend().reduce_rows(view.num_rows, view.num_cols,
                                ReduceRowsFn<T, Op>{x.data<T>(), y.data<T>(), view, op});
  }

  ReduceKind kind_;
  bool axes_from_input_;
  bool keepdims_;
  bool noop_with_empty_axes_;
  std::vector<int64_t> axes_;
};

template <class B>
class ArgReduceKernel final : public DeviceKernel<B> {
 public:
  ArgReduceKernel(const KernelInfo& info, bool max)
      : DeviceKernel<B>(info),
        max_(max),
        axis_(info.attr_int("axis", 0)),
        keepdims_(info.attr_int("keepdims", 1) != 0),
        select_last_(info.attr_int("select_last_index", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes = {axis_};
    if (x.rank() == 0 || !normalize_reduce_axes(axes, x.rank()))
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for shape " +
               shape_to_string(x.shape()));
    Tensor& y = ctx.output(0, DType::Int64, reduced_shape(x.shape(), axes, keepdims_));
    if (x.dim(axes[0]) == 0 && y.size() > 0)
      ctx.fail("cannot take the arg extreme over an empty axis");
    const ReduceView view = reduce_view(x.shape(), axes, ctx.describe());
    dispatch_device_number(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      int64_t* out = y.data<int64_t>();
      if (max_) {
        this->backend().reduce_rows(view.num_rows, view.num_cols,
                                    ArgReduceFn<T, true>{x.data<T>(), out, view, select_last_});
      } else {
        this->backend().reduce_rows(view.num_rows, view.num_cols,
                                    ArgReduceFn<T, false>{x.data<T>(), out, view, select_last_});
      }
    });
  }

 private:
  bool max_;
  int64_t axis_;
  bool keepdims_;
  bool select_last_;
};

template <class B>
void register_reduce(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  const std::vector<DType> numbers = {DType::Float, DType::Double, DType::Float16, DType::BFloat16,
                                      DType::Int32, DType::Int64,  DType::UInt32,  DType::UInt64};
  std::vector<DType> ordered = numbers;
  ordered.insert(ordered.end(), {DType::Int8, DType::UInt8, DType::Bool});
  // Axes are an attribute before `input_axes_since` and the optional input 1, read on the
  // host, from then on.
  auto add = [&](const char* op, ReduceKind kind, int input_axes_since,
                 const std::vector<DType>& dtypes) {
    reg.add({"", op, 1, input_axes_since - 1, dtypes, 0, [kind](const KernelInfo& info) {
               return std::make_unique<ReduceKernel<B>>(info, kind, false);
             }});
    reg.add({"",
             op,
             input_axes_since,
             kAny,
             dtypes,
             0,
             [kind](const KernelInfo& info) {
               return std::make_unique<ReduceKernel<B>>(info, kind, true);
             },
             {1}});
  };
  add("ReduceSum", ReduceKind::Sum, 13, numbers);
  add("ReduceMean", ReduceKind::Mean, 18, numbers);
  add("ReduceMax", ReduceKind::Max, 18, ordered);
  add("ReduceMin", ReduceKind::Min, 18, ordered);
  add("ReduceProd", ReduceKind::Prod, 18, numbers);
  add("ReduceL1", ReduceKind::L1, 18, numbers);
  add("ReduceL2", ReduceKind::L2, 18, numbers);
  add("ReduceLogSum", ReduceKind::LogSum, 18, kDeviceFloatTypes);
  add("ReduceLogSumExp", ReduceKind::LogSumExp, 18, kDeviceFloatTypes);
  add("ReduceSumSquare", ReduceKind::SumSquare, 18, numbers);
  reg.add({"", "ArgMax", 1, kAny, kDeviceNumberTypes, 0, [](const KernelInfo& info) {
             return std::make_unique<ArgReduceKernel<B>>(info, true);
           }});
  reg.add({"", "ArgMin", 1, kAny, kDeviceNumberTypes, 0, [](const KernelInfo& info) {
             return std::make_unique<ArgReduceKernel<B>>(info, false);
           }});
}

}  // namespace graft::cuda
