// Unique: the distinct elements (or slices along an axis), with the index of each one's first
// occurrence, the inverse mapping and the counts.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Three-way comparison of two values; NaNs are equal to each other and above every number, as
// in NumPy's unique.
template <typename V>
int compare_values(const V& a, const V& b) {
  if constexpr (std::is_floating_point_v<V>) {
    const bool a_nan = std::isnan(a), b_nan = std::isnan(b);
    if (a_nan || b_nan) return static_cast<int>(a_nan) - static_cast<int>(b_nan);
  }
  if (a == b) return 0;
  return a < b ? -1 : 1;
}

// Three-way comparison of slices `a` and `b` of `x`, viewed as [outer, n, inner].
template <typename T>
int compare_slices(const T* x, int64_t a, int64_t b, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    const T* pa = x + (o * n + a) * inner;
    const T* pb = x + (o * n + b) * inner;
    for (int64_t i = 0; i < inner; ++i) {
      int c = 0;
      if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
        c = compare_values(static_cast<float>(pa[i]), static_cast<float>(pb[i]));
      } else {
        c = compare_values(pa[i], pb[i]);
      }
      if (c != 0) return c;
    }
  }
  return 0;
}

class Unique final : public Kernel {
 public:
  explicit Unique(const KernelInfo& info)
      : has_axis_(info.has_attr("axis")),
        axis_(info.attr_int("axis", 0)),
        sorted_(info.attr_int("sorted", 1) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& input = ctx.input(0);
    const Tensor x = has_axis_ ? input : input.reshaped({input.size()});
    if (x.rank() == 0) ctx.fail("axis given for a scalar input");
    const int64_t axis = has_axis_ ? tensor_ops::normalize_axis(ctx, axis_, x.rank()) : 0;
    const auto ax = static_cast<size_t>(axis);
    const int64_t n = x.dim(axis);
    const int64_t outer = tensor_ops::product(x.shape(), 0, ax);
    const int64_t inner = tensor_ops::product(x.shape(), ax + 1, x.shape().size());

    // Slices sorted by value, ties by position; then grouped.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::vector<int64_t> group_of(static_cast<size_t>(n));  // group of each slice
    std::vector<int64_t> first;                             // first slice of each group
    auto group = [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* v = x.data<T>();
      auto cmp = [&](int64_t a, int64_t b) { return compare_slices(v, a, b, outer, n, inner); };
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
      for (size_t i = 0; i < order.size(); ++i) {
        if (i == 0 || cmp(order[i - 1], order[i]) != 0) first.push_back(order[i]);
        group_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(first.size()) - 1;
      }
    };
    if (x.dtype() == DType::String) {
      group(TypeTag<std::string>{});
    } else {
      dispatch_numeric(x.dtype(), "Unique", group);
    }
    const auto groups = static_cast<int64_t>(first.size());
    // Output position of each group: by value when sorted, else by first occurrence.
    std::vector<int64_t> position(first.size());
    std::iota(position.begin(), position.end(), 0);
    if (!sorted_) {
      std::vector<int64_t> by_first(first.size());
      std::iota(by_first.begin(), by_first.end(), 0);
      std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) {
        return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
      });
      for (size_t p = 0; p < by_first.size(); ++p) {
        position[static_cast<size_t>(by_first[p])] = static_cast<int64_t>(p);
      }
    }
    std::vector<int64_t> picked(first.size()), counts(first.size(), 0);
    for (size_t g = 0; g < first.size(); ++g) {
      picked[static_cast<size_t>(position[g])] = first[g];
    }
    for (int64_t j = 0; j < n; ++j) {
      ++counts[static_cast<size_t>(
          position[static_cast<size_t>(group_of[static_cast<size_t>(j)])])];
    }

    Shape shape = x.shape();
    shape[ax] = groups;
    Tensor& y = ctx.output(0, x.dtype(), shape);
    tensor_ops::dispatch_copyable(x.dtype(), "Unique", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t g = 0; g < groups; ++g) {
          const T* in = src + (o * n + picked[static_cast<size_t>(g)]) * inner;
          std::copy(in, in + inner, dst + (o * groups + g) * inner);
        }
      }
    });
    if (ctx.has_output(1)) {
      std::copy(picked.begin(), picked.end(),
                ctx.output(1, DType::Int64, {groups}).data<int64_t>());
    }
    if (ctx.has_output(2)) {
      int64_t* inverse = ctx.output(2, DType::Int64, {n}).data<int64_t>();
      for (int64_t j = 0; j < n; ++j) {
        inverse[j] = position[static_cast<size_t>(group_of[static_cast<size_t>(j)])];
      }
    }
    if (ctx.has_output(3)) {
      std::copy(counts.begin(), counts.end(),
                ctx.output(3, DType::Int64, {groups}).data<int64_t>());
    }
  }

 private:
  bool has_axis_;
  int64_t axis_;
  bool sorted_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_unique) { reg.add({"", "Unique", 11, 1 << 30, {}, 0, make<Unique>}); }

}  // namespace graft
