// TopK: the k largest (or smallest) elements along an axis and their indices. Equal values
// keep their original order, so the lower index comes first.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// TopK-1 takes k as an attribute, 10 as input 1; 11 adds largest and sorted. Output is always
// sorted (sorted=0 leaves the order unspecified).
// A strict weak order that puts NaN above every number.
template <typename K>
bool less(K a, K b) {
  if constexpr (std::is_floating_point_v<K>) {
    if (std::isnan(a) || std::isnan(b)) return !std::isnan(a);
  }
  return a < b;
}

class TopK final : public Kernel {
 public:
  explicit TopK(const KernelInfo& info)
      : k_attr_(info.since_version() < 10),
        k_(info.attr_int("k", -1)),
        axis_(info.attr_int("axis", -1)),
        largest_(info.attr_int("largest", 1) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() == 0) ctx.fail("input must have rank >= 1");
    int64_t k = k_;
    if (!k_attr_) {
      const Tensor& kt = ctx.input(1);
      if (kt.size() != 1) ctx.fail("K must hold one value");
      k = kt.scalar_as_int();
    }
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, x.rank());
    const int64_t dim = x.dim(axis);
    if (k < 0 || k > dim) {
      ctx.fail("k " + std::to_string(k) + " is outside [0, " + std::to_string(dim) + "]");
    }
    Shape shape = x.shape();
    shape[static_cast<size_t>(axis)] = k;
    Tensor& values = ctx.output(0, x.dtype(), shape);
    Tensor& indices = ctx.output(1, DType::Int64, shape);
    const int64_t outer = tensor_ops::product(x.shape(), 0, static_cast<size_t>(axis));
    const int64_t inner =
        tensor_ops::product(x.shape(), static_cast<size_t>(axis) + 1, x.shape().size());
    if (k == 0) return;
    dispatch_number(x.dtype(), "TopK", [&](auto tag) {
      using T = typename decltype(tag)::type;
      constexpr bool kHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
      using K = std::conditional_t<kHalf, float, T>;
      const T* src = x.data<T>();
      T* out_values = values.data<T>();
      int64_t* out_indices = indices.data<int64_t>();
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements)
      for (int64_t line = 0; line < outer * inner; ++line) {
        const int64_t o = line / inner, i = line % inner;
        const T* in = src + o * dim * inner + i;
        std::vector<std::pair<K, int64_t>> items(static_cast<size_t>(dim));
        for (int64_t j = 0; j < dim; ++j) {
          items[static_cast<size_t>(j)] = {static_cast<K>(in[j * inner]), j};
        }
        auto before = [this](const std::pair<K, int64_t>& a, const std::pair<K, int64_t>& b) {
          const bool a_less = less(a.first, b.first), b_less = less(b.first, a.first);
          if (a_less != b_less) return largest_ ? b_less : a_less;
          return a.second < b.second;
        };
        std::partial_sort(items.begin(), items.begin() + k, items.end(), before);
        const int64_t base = o * k * inner + i;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t from = items[static_cast<size_t>(j)].second;
          out_values[base + j * inner] = in[from * inner];
          out_indices[base + j * inner] = from;
        }
      }
    });
  }

 private:
  bool k_attr_;
  int64_t k_;
  int64_t axis_;
  bool largest_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_topk) { reg.add({"", "TopK", 1, 1 << 30, kNumberTypes, 0, make<TopK>}); }

}  // namespace graft
