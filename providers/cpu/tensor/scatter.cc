// ScatterElements (and its old name Scatter) and ScatterND: a copy of data with elements or
// slices replaced by, or combined with, updates at given indices.
#include <algorithm>
#include <type_traits>

#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

template <typename T>
T combine(ScatterReduction reduction, T a, T b) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return T(combine<float>(reduction, static_cast<float>(a), static_cast<float>(b)));
  } else if constexpr (std::is_same_v<T, bool>) {
    // As NumPy does for bool: add is or, mul is and.
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
    switch (reduction) {
      case ScatterReduction::Add:
        return static_cast<T>(a + b);
      case ScatterReduction::Mul:
        return static_cast<T>(a * b);
      case ScatterReduction::Max:
        return std::max(a, b);
      case ScatterReduction::Min:
        return std::min(a, b);
      default:
        return b;
    }
  }
}

// Runs `body` with T the element type: a same-size stand-in without reduction, the real
// numeric type with one.
template <typename F>
void dispatch_scatter(ScatterReduction reduction, DType dtype, const char* what, F&& body) {
  if (reduction == ScatterReduction::None) {
    tensor_ops::dispatch_copyable(dtype, what, body);
  } else {
    dispatch_numeric(dtype, what, body);
  }
}

class ScatterElements final : public Kernel {
 public:
  explicit ScatterElements(const KernelInfo& info)
      : axis_(info.attr_int("axis", 0)), reduction_(parse_scatter_reduction(info)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const Tensor& updates = ctx.input(2);
    if (data.rank() == 0) ctx.fail("data must have rank >= 1");
    if (indices.shape() != updates.shape()) ctx.fail("indices and updates differ in shape");
    if (updates.dtype() != data.dtype()) ctx.fail("updates and data differ in dtype");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, data.rank());
    check_elements_indices(ctx, data.shape(), indices.shape(), axis);
    const int64_t dim = data.dim(axis);
    std::vector<int64_t> idx = indices.to_int_vector();
    for (int64_t& i : idx) {
      if (i < -dim || i >= dim) {
        ctx.fail("index " + std::to_string(i) + " is out of range for a dim of " +
                 std::to_string(dim));
      }
      if (i < 0) i += dim;
    }
    Tensor y = data.clone();
    const std::vector<int64_t> strides = tensor_ops::contiguous_strides(data.shape());
    const auto ax = static_cast<size_t>(axis);
    dispatch_scatter(reduction_, data.dtype(), "ScatterElements", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = updates.data<T>();
      T* dst = y.data<T>();
      std::vector<int64_t> pos(indices.shape().size(), 0);
      int64_t base = 0;
      for (size_t i = 0; i < idx.size(); ++i) {
        T& target = dst[base + idx[i] * strides[ax]];
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, tensor_ops::Bytes16>) {
          target = src[i];
        } else {
          target = combine<T>(reduction_, target, src[i]);
        }
        for (size_t d = pos.size(); d-- > 0;) {
          if (d != ax) base += strides[d];
          if (++pos[d] < indices.shape()[d]) break;
          if (d != ax) base -= pos[d] * strides[d];
          pos[d] = 0;
        }
      }
    });
    ctx.set_output(0, std::move(y));
  }

 private:
  int64_t axis_;
  ScatterReduction reduction_;
};

class ScatterND final : public Kernel {
 public:
  explicit ScatterND(const KernelInfo& info) : reduction_(parse_scatter_reduction(info)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const Tensor& updates = ctx.input(2);
    if (updates.dtype() != data.dtype()) ctx.fail("updates and data differ in dtype");
    const int64_t slice = scatter_nd_slice(ctx, data.shape(), indices.shape(), updates.shape());
    const int64_t k = indices.dim(indices.rank() - 1);
    const std::vector<int64_t> idx = indices.to_int_vector();
    const std::vector<int64_t> strides = tensor_ops::contiguous_strides(data.shape());
    const int64_t n = tensor_ops::product(indices.shape(), 0, indices.shape().size() - 1);
    std::vector<int64_t> offsets(static_cast<size_t>(n), 0);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dim = data.dim(j);
        int64_t i = idx[static_cast<size_t>(t * k + j)];
        if (i < -dim || i >= dim) {
          ctx.fail("index " + std::to_string(i) + " is out of range for a dim of " +
                   std::to_string(dim));
        }
        if (i < 0) i += dim;
        offsets[static_cast<size_t>(t)] += i * strides[static_cast<size_t>(j)];
      }
    }
    Tensor y = data.clone();
    dispatch_scatter(reduction_, data.dtype(), "ScatterND", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = updates.data<T>();
      T* dst = y.data<T>();
      for (int64_t t = 0; t < n; ++t) {
        T* to = dst + offsets[static_cast<size_t>(t)];
        const T* from = src + t * slice;
        for (int64_t e = 0; e < slice; ++e) {
          if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, tensor_ops::Bytes16>) {
            to[e] = from[e];
          } else {
            to[e] = combine<T>(reduction_, to[e], from[e]);
          }
        }
      }
    });
    ctx.set_output(0, std::move(y));
  }

 private:
  ScatterReduction reduction_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_scatter) {
  reg.add({"", "Scatter", 9, 1 << 30, {}, 0, make<ScatterElements>});
  reg.add({"", "ScatterElements", 11, 1 << 30, {}, 0, make<ScatterElements>});
  reg.add({"", "ScatterND", 11, 1 << 30, {}, 0, make<ScatterND>});
}

}  // namespace graft
