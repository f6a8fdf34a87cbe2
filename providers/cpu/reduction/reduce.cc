// ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
// ReduceLogSumExp and ReduceSumSquare over one reduction engine. Axes come from the attribute
// before opset 18 (ReduceSum: 13) and from the optional second input from then on. Empty `axes`
// reduce everything unless noop_with_empty_axes is set; then nothing is reduced and only the
// element transform applies (NumPy's reduction over no axes, as the ONNX reference does).
#include <cmath>
#include <limits>
#include <type_traits>

#include "exec/kernel.h"
#include "exec/reduce_shapes.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/reduction/reduce_engine.h"

namespace graft {
namespace {

enum class ReduceOp { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

void reduce_bool(ReduceOp op, const cpu::ReducePlan& plan, const bool* in, bool* out,
                 const KernelContext& ctx) {
  if (op != ReduceOp::Max && op != ReduceOp::Min)
    ctx.fail("bool inputs are supported by ReduceMax and ReduceMin only");
  const bool is_max = op == ReduceOp::Max;
  cpu::run_reduce<bool>(
      plan, in, !is_max, [is_max](bool a, bool x, int64_t) { return is_max ? (a || x) : (a && x); },
      [out](int64_t o, bool a) { out[o] = a; });
}

template <typename T>
void reduce_integer(ReduceOp op, const cpu::ReducePlan& plan, const T* in, T* out,
                    const KernelContext& ctx) {
  using Acc = uint64_t;  // wraps like NumPy's fixed-width arithmetic
  const int64_t n = plan.reduce_count();
  auto sum = [](Acc a, T x, int64_t) { return a + static_cast<Acc>(x); };
  auto sum_square = [](Acc a, T x, int64_t) {
    return a + static_cast<Acc>(x) * static_cast<Acc>(x);
  };
  auto store = [out](int64_t o, Acc a) { out[o] = static_cast<T>(a); };
  switch (op) {
    case ReduceOp::Sum:
      return cpu::run_reduce<Acc>(plan, in, 0, sum, store);
    case ReduceOp::Mean:
      return cpu::run_reduce<Acc>(plan, in, 0, sum, [out, n](int64_t o, Acc a) {
        if (n == 0)
          out[o] = 0;
        else if constexpr (std::is_signed_v<T>)
          out[o] = static_cast<T>(static_cast<int64_t>(a) / n);
        else
          out[o] = static_cast<T>(a / static_cast<Acc>(n));
      });
    case ReduceOp::Prod:
      return cpu::run_reduce<Acc>(
          plan, in, 1, [](Acc a, T x, int64_t) { return a * static_cast<Acc>(x); }, store);
    case ReduceOp::SumSquare:
      return cpu::run_reduce<Acc>(plan, in, 0, sum_square, store);
    case ReduceOp::L1:
      return cpu::run_reduce<Acc>(
          plan, in, 0,
          [](Acc a, T x, int64_t) {
            return x < T(0) ? a - static_cast<Acc>(x) : a + static_cast<Acc>(x);
          },
          store);
    case ReduceOp::L2:
      return cpu::run_reduce<Acc>(plan, in, 0, sum_square, [out](int64_t o, Acc a) {
        out[o] = static_cast<T>(std::sqrt(static_cast<double>(a)));
      });
    case ReduceOp::Max:
      return cpu::run_reduce<T>(
          plan, in, std::numeric_limits<T>::lowest(),
          [](T a, T x, int64_t) { return x > a ? x : a; }, [out](int64_t o, T a) { out[o] = a; });
    case ReduceOp::Min:
      return cpu::run_reduce<T>(
          plan, in, std::numeric_limits<T>::max(), [](T a, T x, int64_t) { return x < a ? x : a; },
          [out](int64_t o, T a) { out[o] = a; });
    default:
      ctx.fail("this reduction needs a floating-point input");
  }
}

template <typename T>
void reduce_float(ReduceOp op, const cpu::ReducePlan& plan, const T* in, T* out) {
  using Acc = cpu::AccumulateType<T>;
  const Acc n = static_cast<Acc>(plan.reduce_count());
  const Acc inf = std::numeric_limits<Acc>::infinity();
  auto sum = [](Acc a, T x, int64_t) { return a + static_cast<Acc>(x); };
  auto sum_square = [](Acc a, T x, int64_t) {
    const Acc v = static_cast<Acc>(x);
    return a + v * v;
  };
  auto store = [out](int64_t o, Acc a) { out[o] = static_cast<T>(a); };
  switch (op) {
    case ReduceOp::Sum:
      return cpu::run_reduce<Acc>(plan, in, 0, sum, store);
    case ReduceOp::Mean:
      return cpu::run_reduce<Acc>(plan, in, 0, sum,
                                  [out, n](int64_t o, Acc a) { out[o] = static_cast<T>(a / n); });
    case ReduceOp::Prod:
      return cpu::run_reduce<Acc>(
          plan, in, 1, [](Acc a, T x, int64_t) { return a * static_cast<Acc>(x); }, store);
    case ReduceOp::SumSquare:
      return cpu::run_reduce<Acc>(plan, in, 0, sum_square, store);
    case ReduceOp::L1:
      return cpu::run_reduce<Acc>(
          plan, in, 0, [](Acc a, T x, int64_t) { return a + std::abs(static_cast<Acc>(x)); },
          store);
    case ReduceOp::L2:
      return cpu::run_reduce<Acc>(plan, in, 0, sum_square, [out](int64_t o, Acc a) {
        out[o] = static_cast<T>(std::sqrt(a));
      });
    case ReduceOp::LogSum:
      return cpu::run_reduce<Acc>(
          plan, in, 0, sum, [out](int64_t o, Acc a) { out[o] = static_cast<T>(std::log(a)); });
    case ReduceOp::Max:
    case ReduceOp::Min: {
      const bool is_max = op == ReduceOp::Max;
      // NaN wins, as in NumPy: once the accumulator is NaN no comparison replaces it.
      return cpu::run_reduce<Acc>(
          plan, in, is_max ? -inf : inf,
          [is_max](Acc a, T x, int64_t) {
            const Acc v = static_cast<Acc>(x);
            return (is_max ? v > a : v < a) || std::isnan(v) ? v : a;
          },
          store);
    }
    case ReduceOp::LogSumExp: {
      // log(sum(exp(x - m))) + m with m the maximum, so large inputs do not overflow.
      std::vector<Acc> shift(static_cast<size_t>(plan.out_count()));
      cpu::run_reduce<Acc>(
          plan, in, -inf,
          [](Acc a, T x, int64_t) {
            const Acc v = static_cast<Acc>(x);
            return v > a || std::isnan(v) ? v : a;
          },
          [&shift](int64_t o, Acc a) { shift[static_cast<size_t>(o)] = std::isinf(a) ? 0 : a; });
      return cpu::run_reduce<Acc>(
          plan, in, 0,
          [&shift](Acc a, T x, int64_t o) {
            return a + std::exp(static_cast<Acc>(x) - shift[static_cast<size_t>(o)]);
          },
          [out, &shift](int64_t o, Acc a) {
            out[o] = static_cast<T>(std::log(a) + shift[static_cast<size_t>(o)]);
          });
    }
  }
}

class Reduce : public Kernel {
 public:
  Reduce(const KernelInfo& info, ReduceOp op, bool axes_from_input)
      : op_(op),
        axes_from_input_(axes_from_input),
        keepdims_(info.attr_int("keepdims", 1) != 0),
        noop_with_empty_axes_(info.attr_int("noop_with_empty_axes", 0) != 0),
        axes_(info.attr_ints("axes")) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && ctx.has_input(1)) axes = ctx.input(1).to_int_vector();
    // Reducing over no axis with an identity element transform is the input itself: handed on
    // as a view, not copied (the gradient of a MatMul that broadcast nothing is such a
    // ReduceSum).
    const bool identity = op_ == ReduceOp::Sum || op_ == ReduceOp::Mean || op_ == ReduceOp::Max ||
                          op_ == ReduceOp::Min || op_ == ReduceOp::Prod;
    if (axes.empty() && noop_with_empty_axes_ && identity && x.dtype() != DType::Bool) {
      ctx.set_output(0, ctx.input_value(0));
      return;
    }
    if (!resolve_reduce_axes(axes, x.rank(), noop_with_empty_axes_))
      ctx.fail("axes out of range for an input of shape " + shape_to_string(x.shape()));
    const cpu::ReducePlan plan = cpu::make_reduce_plan(x.shape(), axes, keepdims_);
    Tensor& y = ctx.output(0, x.dtype(), plan.out_shape);
    dispatch_numeric(x.dtype(), "Reduce", [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bool>)
        reduce_bool(op_, plan, x.data<bool>(), y.data<bool>(), ctx);
      else if constexpr (std::is_integral_v<T>)
        reduce_integer<T>(op_, plan, x.data<T>(), y.data<T>(), ctx);
      else
        reduce_float<T>(op_, plan, x.data<T>(), y.data<T>());
    });
  }

 private:
  ReduceOp op_;
  bool axes_from_input_;
  bool keepdims_;
  bool noop_with_empty_axes_;
  std::vector<int64_t> axes_;
};

void add_reduce(KernelRegistry& reg, const char* name, ReduceOp op, int input_axes_since,
                const std::vector<DType>& dtypes) {
  reg.add({"", name, 1, input_axes_since - 1, dtypes, 0,
           [op](const KernelInfo& info) { return std::make_unique<Reduce>(info, op, false); }});
  reg.add({"", name, input_axes_since, 1 << 30, dtypes, 0,
           [op](const KernelInfo& info) { return std::make_unique<Reduce>(info, op, true); }});
}

}  // namespace

GRAFT_CPU_KERNELS(reduce) {
  const std::vector<DType> numbers = {DType::Float, DType::Double, DType::Float16, DType::BFloat16,
                                      DType::Int32, DType::Int64,  DType::UInt32,  DType::UInt64};
  std::vector<DType> ordered = numbers;
  ordered.insert(ordered.end(), {DType::Int8, DType::UInt8, DType::Bool});
  add_reduce(reg, "ReduceSum", ReduceOp::Sum, 13, numbers);
  add_reduce(reg, "ReduceMean", ReduceOp::Mean, 18, numbers);
  add_reduce(reg, "ReduceMax", ReduceOp::Max, 18, ordered);
  add_reduce(reg, "ReduceMin", ReduceOp::Min, 18, ordered);
  add_reduce(reg, "ReduceProd", ReduceOp::Prod, 18, numbers);
  add_reduce(reg, "ReduceL1", ReduceOp::L1, 18, numbers);
  add_reduce(reg, "ReduceL2", ReduceOp::L2, 18, numbers);
  add_reduce(reg, "ReduceLogSum", ReduceOp::LogSum, 18, kFloatTypes);
  add_reduce(reg, "ReduceLogSumExp", ReduceOp::LogSumExp, 18, kFloatTypes);
  add_reduce(reg, "ReduceSumSquare", ReduceOp::SumSquare, 18, numbers);
}

}  // namespace graft
