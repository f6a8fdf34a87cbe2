// Elementwise kernels with NumPy broadcasting: unary math, binary arithmetic, comparisons and
// logic, the variadic Sum/Mean/Max/Min, Where and Cast. One thread per output element; every
// input is read through a StridedIndex (contiguous when it has the output's shape).
#pragma once

#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

// ---------------------------------------------------------------------------------------------
// Operations, on the accumulation type (float for the 16-bit floats).

struct ReluOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return x > A(0) ? x : A(0);
  }
};
struct NegOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return -x;
  }
};
struct AbsOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return x < A(0) ? -x : x;
  }
};
struct ExpOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_exp(x);
  }
};
struct LogOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_log(x);
  }
};
struct SqrtOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_sqrt(x);
  }
};
struct TanhOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_tanh(x);
  }
};
struct SigmoidOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    // exp of a non-positive argument only, so neither tail overflows.
    if (x >= A(0)) return A(1) / (A(1) + math_exp(-x));
    const A e = math_exp(x);
    return e / (A(1) + e);
  }
};
struct ErfOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_erf(x);
  }
};
struct ReciprocalOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return A(1) / x;
  }
};
struct FloorOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_floor(x);
  }
};
struct CeilOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_ceil(x);
  }
};
struct SinOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_sin(x);
  }
};
struct CosOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return math_cos(x);
  }
};
struct SoftplusOp {
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return x > A(0) ? x + math_log1p(math_exp(-x)) : math_log1p(math_exp(x));
  }
};
struct NotOp {
  GRAFT_HD bool operator()(bool x) const { return !x; }
};
struct LeakyReluOp {
  float alpha;
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return x >= A(0) ? x : static_cast<A>(alpha) * x;
  }
};
struct EluOp {
  float alpha;
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    return x >= A(0) ? x : static_cast<A>(alpha) * math_expm1(x);
  }
};
// Gelu (opset 20): exact with erf, or the tanh approximation.
struct GeluOp {
  bool tanh_approximation;
  template <typename A>
  GRAFT_HD A operator()(A x) const {
    if (tanh_approximation) {
      const A inner = A(0.7978845608028654) * (x + A(0.044715) * x * x * x);
      return A(0.5) * x * (A(1) + math_tanh(inner));
    }
    return A(0.5) * x * (A(1) + math_erf(x * A(0.7071067811865476)));
  }
};

struct AddOp {
  template <typename A>
  GRAFT_HD A operator()(A a, A b) const {
    return a + b;
  }
};
struct SubOp {
  template <typename A>
  GRAFT_HD A operator()(A a, A b) const {
    return a - b;
  }
};
struct MulOp {
  template <typename A>
  GRAFT_HD A operator()(A a, A b) const {
    return a * b;
  }
};
struct DivOp {
  template <typename A>
  GRAFT_HD A operator()(A a, A b) const {
    return a / b;
  }
};
// Max and Min propagate NaN, as the CPU provider's do.
struct MaxOp {
  template <typename A>
  GRAFT_HD A operator()(A a, A b) const {
    if constexpr (std::is_floating_point_v<A>) {
      if (math_isnan(a) || math_isnan(b)) return a + b;
    }
    return a < b ? b : a;
  }
};
struct MinOp {
  template <typename A>
  GRAFT_HD A operator()(A a, A b) const {
    if constexpr (std::is_floating_point_v<A>) {
      if (math_isnan(a) || math_isnan(b)) return a + b;
    }
    return b < a ? b : a;
  }
};
struct EqualOp {
  template <typename A>
  GRAFT_HD bool operator()(A a, A b) const {
    return a == b;
  }
};
struct LessOp {
  template <typename A>
  GRAFT_HD bool operator()(A a, A b) const {
    return a < b;
  }
};
struct LessOrEqualOp {
  template <typename A>
  GRAFT_HD bool operator()(A a, A b) const {
    return a <= b;
  }
};
struct GreaterOp {
  template <typename A>
  GRAFT_HD bool operator()(A a, A b) const {
    return a > b;
  }
};
struct GreaterOrEqualOp {
  template <typename A>
  GRAFT_HD bool operator()(A a, A b) const {
    return a >= b;
  }
};
struct KeepFirst {
  template <typename A>
  GRAFT_HD A operator()(A a, A) const {
    return a;
  }
};
struct ScaleOp {
  double scale;
  template <typename A>
  GRAFT_HD A operator()(A a) const {
    return static_cast<A>(a * static_cast<A>(scale));
  }
};
struct AndOp {
  GRAFT_HD bool operator()(bool a, bool b) const { return a && b; }
};
struct OrOp {
  GRAFT_HD bool operator()(bool a, bool b) const { return a || b; }
};
struct XorOp {
  GRAFT_HD bool operator()(bool a, bool b) const { return a != b; }
};

// ---------------------------------------------------------------------------------------------
// Functors the backend runs per element.

template <typename T, typename R, typename Op>
struct UnaryFn {
  const T* x;
  R* y;
  Op op;
  GRAFT_HD void operator()(int64_t i) const { y[i] = narrow<R>(op(widen(x[i]))); }
};

template <typename T, typename R, typename Op>
struct BinaryFn {
  const T* a;
  const T* b;
  R* y;
  StridedIndex ia;
  StridedIndex ib;
  Op op;
  GRAFT_HD void operator()(int64_t i) const {
    y[i] = narrow<R>(op(widen(a[ia(i)]), widen(b[ib(i)])));
  }
};

// Pow: a float or integer base, an exponent of any number type.
template <typename T, typename E>
struct PowFn {
  const T* a;
  const E* b;
  T* y;
  StridedIndex ia;
  StridedIndex ib;
  GRAFT_HD void operator()(int64_t i) const {
    if constexpr (std::is_integral_v<T>) {
      const double r =
          math_pow(static_cast<double>(a[ia(i)]), static_cast<double>(widen(b[ib(i)])));
      y[i] = static_cast<T>(r);
    } else {
      using A = Acc<T>;
      y[i] = narrow<T>(math_pow(widen(a[ia(i)]), static_cast<A>(widen(b[ib(i)]))));
    }
  }
};

template <typename T>
struct WhereFn {
  const bool* c;
  const T* a;
  const T* b;
  T* y;
  StridedIndex ic;
  StridedIndex ia;
  StridedIndex ib;
  GRAFT_HD void operator()(int64_t i) const { y[i] = c[ic(i)] ? a[ia(i)] : b[ib(i)]; }
};

template <typename From, typename To>
struct CastFn {
  const From* x;
  To* y;
  GRAFT_HD void operator()(int64_t i) const {
    if constexpr (std::is_same_v<To, bool>) {
      y[i] = widen(x[i]) != Acc<From>(0);
    } else if constexpr (is_16bit_float<To> && is_16bit_float<From>) {
      y[i] = narrow<To>(widen(x[i]));
    } else if constexpr (std::is_floating_point_v<Acc<From>> && std::is_integral_v<To>) {
      // Float to integer truncates toward zero through int64 and wraps to the narrower type, as
      // the CPU provider's cast does; NaN and values beyond int64 give INT64_MIN's low bits (a
      // conversion of a value the type cannot hold is undefined behaviour in C++).
      const double v = static_cast<double>(widen(x[i]));
      constexpr double kTwo63 = 9223372036854775808.0;
      if constexpr (std::is_same_v<To, uint64_t>) {
        if (v >= kTwo63 && v < 2 * kTwo63) {
          y[i] = static_cast<uint64_t>(v);
          return;
        }
      }
      const int64_t wide = v >= -kTwo63 && v < kTwo63 ? static_cast<int64_t>(v) : INT64_MIN;
      y[i] = static_cast<To>(wide);
    } else {
      y[i] = narrow<To>(widen(x[i]));
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Kernels.

// Which element types a kernel computes on.
enum class Kinds { Float, Signed, Number, Bool };

template <Kinds K, typename F>
decltype(auto) dispatch_kinds(DType dtype, const char* what, F&& f) {
  if constexpr (K == Kinds::Float) {
    return dispatch_device_float(dtype, what, std::forward<F>(f));
  } else if constexpr (K == Kinds::Bool) {
    if (dtype != DType::Bool) throw_unsupported_dtype(dtype, what);
    return f(TypeTag<bool>{});
  } else if constexpr (K == Kinds::Signed) {
    switch (dtype) {
      case DType::Int8:
        return f(TypeTag<int8_t>{});
      case DType::Int16:
        return f(TypeTag<int16_t>{});
      case DType::Int32:
        return f(TypeTag<int32_t>{});
      case DType::Int64:
        return f(TypeTag<int64_t>{});
      default:
        return dispatch_device_float(dtype, what, std::forward<F>(f));
    }
  } else {
    return dispatch_device_number(dtype, what, std::forward<F>(f));
  }
}

template <class B, typename Op, Kinds K>
class UnaryKernel final : public DeviceKernel<B> {
 public:
  explicit UnaryKernel(const KernelInfo& info, Op op = {}) : DeviceKernel<B>(info), op_(op) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_kinds<K>(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().for_each(x.size(), UnaryFn<T, T, Op>{x.data<T>(), y.data<T>(), op_});
    });
  }

 private:
  Op op_;
};

template <class B, typename Op, Kinds K, bool Compare = false>
class BinaryKernel final : public DeviceKernel<B> {
 public:
  explicit BinaryKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != b.dtype()) {
      ctx.fail(std::string("inputs have different types: ") + dtype_name(a.dtype()) + " and " +
               dtype_name(b.dtype()));
    }
    const Shape shape = broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
    Tensor& y = ctx.output(0, Compare ? DType::Bool : a.dtype(), shape);
    const StridedIndex ia = broadcast_index(a.shape(), shape, ctx.describe());
    const StridedIndex ib = broadcast_index(b.shape(), shape, ctx.describe());
    dispatch_kinds<K>(a.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using R = std::conditional_t<Compare, bool, T>;
      this->backend().for_each(
          y.size(), BinaryFn<T, R, Op>{a.data<T>(), b.data<T>(), y.data<R>(), ia, ib, Op{}});
    });
  }
};

// Sum, Mean, Max, Min over any number of broadcast inputs: the first two combined into the
// output, then each further input into it.
template <class B, typename Op, bool Mean = false>
class VariadicKernel final : public DeviceKernel<B> {
 public:
  explicit VariadicKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    std::vector<Shape> shapes;
    for (int i = 0; i < ctx.num_inputs(); ++i) shapes.push_back(ctx.input(i).shape());
    const Shape shape = broadcast_shapes(shapes, ctx.describe());
    const Tensor& first = ctx.input(0);
    Tensor& y = ctx.output(0, first.dtype(), shape);
    dispatch_device_number(first.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (ctx.num_inputs() == 1) {
        this->backend().for_each(
            y.size(), BinaryFn<T, T, KeepFirst>{
                          first.data<T>(), first.data<T>(), y.data<T>(),
                          broadcast_index(first.shape(), shape, ctx.describe()),
                          broadcast_index(first.shape(), shape, ctx.describe()), KeepFirst{}});
      }
      for (int i = 1; i < ctx.num_inputs(); ++i) {
        const Tensor& x = ctx.input(i);
        if (x.dtype() != first.dtype()) ctx.fail("inputs have different types");
        const T* a = i == 1 ? first.data<T>() : y.data<T>();
        const StridedIndex ia = i == 1 ? broadcast_index(first.shape(), shape, ctx.describe())
                                       : broadcast_index(shape, shape, ctx.describe());
        this->backend().for_each(
            y.size(), BinaryFn<T, T, Op>{a, x.data<T>(), y.data<T>(), ia,
                                         broadcast_index(x.shape(), shape, ctx.describe()), Op{}});
      }
      if constexpr (Mean) {
        this->backend().for_each(y.size(), UnaryFn<T, T, ScaleOp>{y.data<T>(), y.data<T>(),
                                                                  ScaleOp{1.0 / ctx.num_inputs()}});
      }
    });
  }
};

template <class B>
class PowKernel final : public DeviceKernel<B> {
 public:
  explicit PowKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Shape shape = broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
    Tensor& y = ctx.output(0, a.dtype(), shape);
    const StridedIndex ia = broadcast_index(a.shape(), shape, ctx.describe());
    const StridedIndex ib = broadcast_index(b.shape(), shape, ctx.describe());
    dispatch_kinds<Kinds::Signed>(a.dtype(), ctx.describe().c_str(), [&](auto base) {
      using T = typename decltype(base)::type;
      dispatch_kinds<Kinds::Signed>(b.dtype(), ctx.describe().c_str(), [&](auto exponent) {
        using E = typename decltype(exponent)::type;
        this->backend().for_each(y.size(),
                                 PowFn<T, E>{a.data<T>(), b.data<E>(), y.data<T>(), ia, ib});
      });
    });
  }
};

template <class B>
class WhereKernel final : public DeviceKernel<B> {
 public:
  explicit WhereKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    const Tensor& c = ctx.input(0);
    const Tensor& a = ctx.input(1);
    const Tensor& b = ctx.input(2);
    if (c.dtype() != DType::Bool) ctx.fail("condition must be bool");
    const Shape shape = broadcast_shapes({c.shape(), a.shape(), b.shape()}, ctx.describe());
    Tensor& y = ctx.output(0, a.dtype(), shape);
    dispatch_device_numeric(a.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().for_each(y.size(),
                               WhereFn<T>{c.data<bool>(), a.data<T>(), b.data<T>(), y.data<T>(),
                                          broadcast_index(c.shape(), shape, ctx.describe()),
                                          broadcast_index(a.shape(), shape, ctx.describe()),
                                          broadcast_index(b.shape(), shape, ctx.describe())});
    });
  }
};

// Cast and CastLike between the number types and bool.
template <class B>
class CastKernel final : public DeviceKernel<B> {
 public:
  explicit CastKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        like_(info.op_type() == "CastLike"),
        to_(like_ ? DType::Undefined : static_cast<DType>(info.required_int("to"))) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const DType to = like_ ? ctx.input(1).dtype() : to_;
    if (to == x.dtype()) {
      ctx.set_output(0, Value(x));
      return;
    }
    Tensor& y = ctx.output(0, to, x.shape());
    dispatch_device_numeric(x.dtype(), ctx.describe().c_str(), [&](auto from) {
      using From = typename decltype(from)::type;
      dispatch_device_numeric(to, ctx.describe().c_str(), [&](auto into) {
        using To = typename decltype(into)::type;
        this->backend().for_each(x.size(), CastFn<From, To>{x.data<From>(), y.data<To>()});
      });
    });
  }

 private:
  bool like_;
  DType to_;
};

// A factory for a unary kernel whose op takes a float attribute.
template <class B, typename Op>
std::unique_ptr<Kernel> make_alpha(const KernelInfo& info, float fallback) {
  return std::make_unique<UnaryKernel<B, Op, Kinds::Float>>(info,
                                                            Op{info.attr_float("alpha", fallback)});
}

template <class B>
void register_elementwise(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  const std::vector<DType> kSigned = {DType::Float, DType::Double, DType::Float16, DType::BFloat16,
                                      DType::Int8,  DType::Int16,  DType::Int32,   DType::Int64};
  const std::vector<DType> kBool = {DType::Bool};
  auto unary_float = [&](const char* op, int since, KernelFactory factory) {
    reg.add({"", op, since, kAny, kDeviceFloatTypes, 0, std::move(factory)});
  };
  unary_float("Exp", 6, make<UnaryKernel<B, ExpOp, Kinds::Float>>);
  unary_float("Log", 6, make<UnaryKernel<B, LogOp, Kinds::Float>>);
  unary_float("Sqrt", 6, make<UnaryKernel<B, SqrtOp, Kinds::Float>>);
  unary_float("Tanh", 6, make<UnaryKernel<B, TanhOp, Kinds::Float>>);
  unary_float("Sigmoid", 6, make<UnaryKernel<B, SigmoidOp, Kinds::Float>>);
  unary_float("Erf", 9, make<UnaryKernel<B, ErfOp, Kinds::Float>>);
  unary_float("Reciprocal", 6, make<UnaryKernel<B, ReciprocalOp, Kinds::Float>>);
  unary_float("Floor", 6, make<UnaryKernel<B, FloorOp, Kinds::Float>>);
  unary_float("Ceil", 6, make<UnaryKernel<B, CeilOp, Kinds::Float>>);
  unary_float("Sin", 7, make<UnaryKernel<B, SinOp, Kinds::Float>>);
  unary_float("Cos", 7, make<UnaryKernel<B, CosOp, Kinds::Float>>);
  unary_float("Softplus", 1, make<UnaryKernel<B, SoftplusOp, Kinds::Float>>);
  unary_float("LeakyRelu", 6,
              [](const KernelInfo& info) { return make_alpha<B, LeakyReluOp>(info, 0.01f); });
  unary_float("Elu", 6, [](const KernelInfo& info) { return make_alpha<B, EluOp>(info, 1.0f); });
  unary_float("Gelu", 20, [](const KernelInfo& info) -> std::unique_ptr<Kernel> {
    const std::string approximate = info.attr_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh")
      info.fail("approximate must be 'none' or 'tanh', not '" + approximate + "'");
    return std::make_unique<UnaryKernel<B, GeluOp, Kinds::Float>>(info,
                                                                  GeluOp{approximate == "tanh"});
  });
  reg.add({"", "Relu", 6, kAny, kSigned, 0, make<UnaryKernel<B, ReluOp, Kinds::Signed>>});
  reg.add({"", "Neg", 6, kAny, kSigned, 0, make<UnaryKernel<B, NegOp, Kinds::Signed>>});
  reg.add({"", "Abs", 6, kAny, kSigned, 0, make<UnaryKernel<B, AbsOp, Kinds::Signed>>});
  reg.add({"", "Not", 1, kAny, kBool, 0, make<UnaryKernel<B, NotOp, Kinds::Bool>>});

  reg.add({"", "Add", 7, kAny, kDeviceNumberTypes, 0, make<BinaryKernel<B, AddOp, Kinds::Number>>});
  reg.add({"", "Sub", 7, kAny, kDeviceNumberTypes, 0, make<BinaryKernel<B, SubOp, Kinds::Number>>});
  reg.add({"", "Mul", 7, kAny, kDeviceNumberTypes, 0, make<BinaryKernel<B, MulOp, Kinds::Number>>});
  reg.add({"", "Div", 7, kAny, kDeviceNumberTypes, 0, make<BinaryKernel<B, DivOp, Kinds::Number>>});
  reg.add({"", "Pow", 7, kAny, kSigned, 0, make<PowKernel<B>>});
  reg.add({"", "Equal", 7, kAny, kDeviceNumberTypes, 0,
           make<BinaryKernel<B, EqualOp, Kinds::Number, true>>});
  reg.add({"", "Equal", 11, kAny, kBool, 0, make<BinaryKernel<B, EqualOp, Kinds::Bool, true>>});
  reg.add({"", "Less", 7, kAny, kDeviceNumberTypes, 0,
           make<BinaryKernel<B, LessOp, Kinds::Number, true>>});
  reg.add({"", "LessOrEqual", 12, kAny, kDeviceNumberTypes, 0,
           make<BinaryKernel<B, LessOrEqualOp, Kinds::Number, true>>});
  reg.add({"", "Greater", 7, kAny, kDeviceNumberTypes, 0,
           make<BinaryKernel<B, GreaterOp, Kinds::Number, true>>});
  reg.add({"", "GreaterOrEqual", 12, kAny, kDeviceNumberTypes, 0,
           make<BinaryKernel<B, GreaterOrEqualOp, Kinds::Number, true>>});
  reg.add({"", "And", 7, kAny, kBool, 0, make<BinaryKernel<B, AndOp, Kinds::Bool, true>>});
  reg.add({"", "Or", 7, kAny, kBool, 0, make<BinaryKernel<B, OrOp, Kinds::Bool, true>>});
  reg.add({"", "Xor", 7, kAny, kBool, 0, make<BinaryKernel<B, XorOp, Kinds::Bool, true>>});
  reg.add({"", "Sum", 8, kAny, kDeviceNumberTypes, 0, make<VariadicKernel<B, AddOp>>});
  reg.add({"", "Mean", 8, kAny, kDeviceFloatTypes, 0, make<VariadicKernel<B, AddOp, true>>});
  reg.add({"", "Max", 8, kAny, kDeviceNumberTypes, 0, make<VariadicKernel<B, MaxOp>>});
  reg.add({"", "Min", 8, kAny, kDeviceNumberTypes, 0, make<VariadicKernel<B, MinOp>>});
  reg.add({"", "Where", 9, kAny, {}, 0, make<WhereKernel<B>>});
  const std::vector<DType> kCastable = {
      DType::Float,  DType::Double, DType::Float16, DType::BFloat16, DType::Int8,
      DType::Int16,  DType::Int32,  DType::Int64,   DType::UInt8,    DType::UInt16,
      DType::UInt32, DType::UInt64, DType::Bool};
  reg.add({"", "Cast", 6, kAny, kCastable, 0, make<CastKernel<B>>});
  reg.add({"", "CastLike", 15, kAny, kCastable, 0, make<CastKernel<B>>});
}

}  // namespace graft::cuda
