// Gather, GatherElements and GatherND: read elements or slices at given indices. Negative
// indices count from the end; out-of-range indices fail.
#include <algorithm>

#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

using tensor_ops::product;

// Reads the indices as int64, adds `dim` to negative ones and checks the range.
std::vector<int64_t> checked_indices(const KernelContext& ctx, const Tensor& indices, int64_t dim) {
  std::vector<int64_t> idx = indices.to_int_vector();
  for (int64_t& i : idx) {
    if (i < -dim || i >= dim) {
      ctx.fail("index " + std::to_string(i) + " is out of range for a dim of " +
               std::to_string(dim));
    }
    if (i < 0) i += dim;
  }
  return idx;
}

class Gather final : public Kernel {
 public:
  explicit Gather(const KernelInfo& info) : axis_(info.attr_int("axis", 0)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    if (data.rank() == 0) ctx.fail("data must have rank >= 1");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, data.rank());
    const int64_t dim = data.dim(axis);
    const std::vector<int64_t> idx = checked_indices(ctx, indices, dim);
    const auto ax = static_cast<size_t>(axis);
    Tensor& y = ctx.output(0, data.dtype(), gather_shape(data.shape(), indices.shape(), axis));
    const int64_t outer = product(data.shape(), 0, ax);
    const int64_t inner = product(data.shape(), ax + 1, data.shape().size());
    const auto n = static_cast<int64_t>(idx.size());
    tensor_ops::dispatch_copyable(data.dtype(), "Gather", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = data.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (outer * n * inner > tensor_ops::kParallelElements)
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t j = 0; j < n; ++j) {
          const T* from = src + (o * dim + idx[static_cast<size_t>(j)]) * inner;
          std::copy(from, from + inner, dst + (o * n + j) * inner);
        }
      }
    });
  }

 private:
  int64_t axis_;
};

class GatherElements final : public Kernel {
 public:
  explicit GatherElements(const KernelInfo& info) : axis_(info.attr_int("axis", 0)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    if (data.rank() == 0) ctx.fail("data must have rank >= 1");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, data.rank());
    check_elements_indices(ctx, data.shape(), indices.shape(), axis);
    const std::vector<int64_t> idx = checked_indices(ctx, indices, data.dim(axis));
    Tensor& y = ctx.output(0, data.dtype(), indices.shape());
    const std::vector<int64_t> strides = tensor_ops::contiguous_strides(data.shape());
    const auto ax = static_cast<size_t>(axis);
    tensor_ops::dispatch_copyable(data.dtype(), "GatherElements", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = data.data<T>();
      T* dst = y.data<T>();
      std::vector<int64_t> pos(indices.shape().size(), 0);
      int64_t base = 0;  // offset of `pos` in data, without the axis term
      for (size_t i = 0; i < idx.size(); ++i) {
        dst[i] = src[base + idx[i] * strides[ax]];
        for (size_t d = pos.size(); d-- > 0;) {
          if (d != ax) base += strides[d];
          if (++pos[d] < indices.shape()[d]) break;
          if (d != ax) base -= pos[d] * strides[d];
          pos[d] = 0;
        }
      }
    });
  }

 private:
  int64_t axis_;
};

// GatherND-12 adds batch_dims.
class GatherND final : public Kernel {
 public:
  explicit GatherND(const KernelInfo& info) : batch_dims_(info.attr_int("batch_dims", 0)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const GatherNDGeometry g = gather_nd_geometry(ctx, data.shape(), indices.shape(), batch_dims_);
    Tensor& y = ctx.output(0, data.dtype(), g.shape);

    const std::vector<int64_t> idx = indices.to_int_vector();
    const std::vector<int64_t> strides = tensor_ops::contiguous_strides(data.shape());
    const int64_t b = batch_dims_, k = g.k, slice = g.slice;
    std::vector<int64_t> offsets(static_cast<size_t>(g.batches * g.tuples));
    for (int64_t t = 0; t < g.batches * g.tuples; ++t) {
      int64_t offset = (t / std::max<int64_t>(g.tuples, 1)) * g.batch_stride;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dim = data.dim(b + j);
        int64_t i = idx[static_cast<size_t>(t * k + j)];
        if (i < -dim || i >= dim) {
          ctx.fail("index " + std::to_string(i) + " is out of range for a dim of " +
                   std::to_string(dim));
        }
        if (i < 0) i += dim;
        offset += i * strides[static_cast<size_t>(b + j)];
      }
      offsets[static_cast<size_t>(t)] = offset;
    }
    tensor_ops::dispatch_copyable(data.dtype(), "GatherND", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = data.data<T>();
      T* dst = y.data<T>();
      const auto n = static_cast<int64_t>(offsets.size());
#pragma omp parallel for if (n * slice > tensor_ops::kParallelElements)
      for (int64_t t = 0; t < n; ++t) {
        const T* from = src + offsets[static_cast<size_t>(t)];
        std::copy(from, from + slice, dst + t * slice);
      }
    });
  }

 private:
  int64_t batch_dims_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_gather) {
  reg.add({"", "Gather", 1, 1 << 30, {}, 0, make<Gather>});
  reg.add({"", "GatherElements", 11, 1 << 30, {}, 0, make<GatherElements>});
  reg.add({"", "GatherND", 11, 1 << 30, {}, 0, make<GatherND>});
}

}  // namespace graft
