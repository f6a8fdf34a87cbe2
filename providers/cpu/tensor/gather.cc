// Gather, GatherElements and GatherND: read elements or slices at given indices. Negative
// indices count from the end; out-of-range indices fail.
#include <algorithm>

#include "exec/kernel.h"
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
    Shape shape(data.shape().begin(), data.shape().begin() + axis);
    shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
    shape.insert(shape.end(), data.shape().begin() + axis + 1, data.shape().end());
    Tensor& y = ctx.output(0, data.dtype(), shape);
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
    if (indices.rank() != data.rank()) {
      ctx.fail("indices rank " + std::to_string(indices.rank()) + " differs from data rank " +
               std::to_string(data.rank()));
    }
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, data.rank());
    for (int64_t d = 0; d < data.rank(); ++d) {
      if (d != axis && indices.dim(d) > data.dim(d)) {
        ctx.fail("indices shape " + shape_to_string(indices.shape()) + " exceeds data shape " +
                 shape_to_string(data.shape()));
      }
    }
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
    const int64_t r = data.rank(), q = indices.rank(), b = batch_dims_;
    if (r < 1 || q < 1) ctx.fail("data and indices must have rank >= 1");
    if (b < 0 || b >= q || b >= r) ctx.fail("batch_dims must be less than both ranks");
    const int64_t k = indices.dim(q - 1);
    if (k < 1 || k > r - b) {
      ctx.fail("indices last dim " + std::to_string(k) + " must be in [1, " +
               std::to_string(r - b) + "]");
    }
    for (int64_t d = 0; d < b; ++d) {
      if (indices.dim(d) != data.dim(d)) ctx.fail("batch dims of data and indices differ");
    }
    Shape shape(indices.shape().begin(), indices.shape().end() - 1);
    shape.insert(shape.end(), data.shape().begin() + b + k, data.shape().end());
    Tensor& y = ctx.output(0, data.dtype(), shape);

    const std::vector<int64_t> idx = indices.to_int_vector();
    const std::vector<int64_t> strides = tensor_ops::contiguous_strides(data.shape());
    const auto ub = static_cast<size_t>(b);
    const int64_t batches = product(data.shape(), 0, ub);
    const int64_t batch_stride = product(data.shape(), ub, data.shape().size());
    const int64_t tuples = product(indices.shape(), ub, indices.shape().size() - 1);
    const int64_t slice = product(data.shape(), ub + static_cast<size_t>(k), data.shape().size());
    std::vector<int64_t> offsets(static_cast<size_t>(batches * tuples));
    for (int64_t t = 0; t < batches * tuples; ++t) {
      int64_t offset = (t / std::max<int64_t>(tuples, 1)) * batch_stride;
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
