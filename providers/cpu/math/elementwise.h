// Shared pieces of the CPU elementwise kernels: the arithmetic type of each element type,
// registration of an op's ONNX versions, and a parallel loop over elements.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/dispatch.h"
#include "exec/kernel.h"
#include "exec/plan.h"
#include "exec/work_pool.h"

namespace graft::elementwise {

// Half types compute in float; every other type in itself.
template <typename T>
inline constexpr bool is_half_v = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
template <typename T>
using compute_t = std::conditional_t<is_half_v<T>, float, T>;

// Registers `op` for each ONNX version in `sinces` (ascending since_versions), each up to the
// next one and the last without end. The kernel reads the node's version from KernelInfo
// where behaviour differs.
inline void register_versions(KernelRegistry& reg, const char* op,
                              std::initializer_list<int> sinces, const std::vector<DType>& dtypes,
                              const KernelFactory& factory, int type_input = 0) {
  const std::vector<int> v(sinces);
  for (size_t i = 0; i < v.size(); ++i) {
    const int until = i + 1 < v.size() ? v[i + 1] - 1 : 1 << 30;
    reg.add({"", op, v[i], until, dtypes, type_input, factory});
  }
}

inline const std::vector<DType> kIntegerTypes = {DType::UInt8,  DType::UInt16, DType::UInt32,
                                                 DType::UInt64, DType::Int8,   DType::Int16,
                                                 DType::Int32,  DType::Int64};
inline const std::vector<DType> kBoolType = {DType::Bool};

// Elements per parallel chunk, and the size from which loops run in parallel.
inline constexpr int64_t kChunk = 1 << 14;
inline constexpr int64_t kParallelMin = 1 << 16;

// Calls fn(begin, end) over [0, n) in chunks, on exec/work_pool.h's threads when n is large.
template <typename F>
void parallel_ranges(int64_t n, F&& fn) {
  if (n < kParallelMin) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  run_units((n + kChunk - 1) / kChunk,
            [&](int64_t c) { fn(c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

// y[i] = op(x[i]) for every element, with TO and TI the stored element types.
template <typename TO, typename TI, typename Op>
void map_unary(Tensor& y, const Tensor& x, Op&& op) {
  const TI* src = x.data<TI>();
  TO* dst = y.data<TO>();
  parallel_ranges(x.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<TO>(op(src[i]));
  });
}

// Which element types a kernel family accepts.
// Any: numbers, bool and string.
enum class Family { Float, Number, Signed, Integer, Bool, Any };

// f(TypeTag<T>{}) for the dtypes of `family`; throws naming `what` for others. Only the
// family's types are instantiated.
template <Family family, typename F>
void dispatch_family(DType dtype, const char* what, F&& f) {
  if constexpr (family == Family::Float) {
    dispatch_float(dtype, what, f);
  } else if constexpr (family == Family::Number) {
    dispatch_number(dtype, what, f);
  } else if constexpr (family == Family::Signed) {
    if (!dtype_is_signed(dtype)) throw_unsupported_dtype(dtype, what);
    dispatch_number(dtype, what, f);
  } else if constexpr (family == Family::Integer) {
    dispatch_integer(dtype, what, f);
  } else if constexpr (family == Family::Bool) {
    if (dtype != DType::Bool) throw_unsupported_dtype(dtype, what);
    f(TypeTag<bool>{});
  } else {
    if (dtype == DType::String) return f(TypeTag<std::string>{});
    dispatch_numeric(dtype, what, f);
  }
}

// Base of unary functors without attributes. A functor is built from the node's KernelInfo
// (reading its attributes) and called on compute_t<T> values.
struct NoAttrs {
  explicit NoAttrs(const KernelInfo& info) {}
};

// y = Fn(x) elementwise, same dtype and shape, for the dtypes of `family`.
template <typename Fn, Family family>
class UnaryKernel : public Kernel, public InPlaceKernel {
 public:
  explicit UnaryKernel(const KernelInfo& info) : fn_(info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    run(ctx, ctx.output(0, x.dtype(), x.shape()), x);
  }

  // The output may overwrite X when nothing reads X afterwards: one buffer less to fill.
  std::vector<std::pair<int, int>> in_place_pairs() const override { return {{0, 0}}; }
  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    if (reuse.empty() || reuse[0] != 0) return compute(ctx);
    Tensor x = ctx.input(0);
    run(ctx, x, x);
    ctx.set_output(0, Value(x));
  }

 private:
  void run(const KernelContext& ctx, Tensor& y, const Tensor& x) {
    dispatch_family<family>(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = compute_t<T>;
      map_unary<T, T>(y, x, [this](T v) { return static_cast<T>(fn_(static_cast<C>(v))); });
    });
  }

 private:
  Fn fn_;
};

}  // namespace graft::elementwise
