// The generators: Range (start, limit and delta are host inputs, the elements computed on the
// device), ConstantOfShape (the shape a host input) and NonZero (its output shape depends on the
// values: see NonZeroKernel for the synchronization it needs). Registered with the tensor family
// (tensor.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "providers/cuda/kernels/movement.h"

namespace graft::cuda {

template <typename T>
struct FillFn {
  T* y;
  T value;
  GRAFT_HD void operator()(int64_t i) const { y[i] = value; }
};

// start + i * delta rounded once per operation, as the host computes it (no fused multiply-add).
template <typename C>
GRAFT_HD C range_element(C start, int64_t i, C delta) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<C, float>) {
    return __fadd_rn(start, __fmul_rn(static_cast<float>(i), delta));
  } else if constexpr (std::is_same_v<C, double>) {
    return __dadd_rn(start, __dmul_rn(static_cast<double>(i), delta));
  }
#endif
  return static_cast<C>(start + static_cast<C>(i) * delta);
}

// Range in C: T itself for integers and double, float for float and the 16-bit floats.
template <typename T, typename C>
struct RangeFn {
  T* y;
  C start;
  C delta;
  GRAFT_HD void operator()(int64_t i) const { y[i] = narrow<T>(range_element(start, i, delta)); }
};

template <typename T>
GRAFT_HD bool is_nonzero(T v) {
  return widen(v) != Acc<T>(0);
}

// NonZero's first pass: the non-zero elements of each chunk of `chunk` elements.
template <typename T>
struct CountNonZeroOp {
  using Acc = int64_t;
  const T* x;
  int64_t n;
  int64_t chunk;
  int64_t* counts;
  GRAFT_HD int64_t identity() const { return 0; }
  GRAFT_HD int64_t load(int64_t r, int64_t j) const {
    const int64_t i = r * chunk + j;
    return i < n && is_nonzero(x[i]) ? 1 : 0;
  }
  GRAFT_HD int64_t combine(int64_t a, int64_t b) const { return a + b; }
  GRAFT_HD void store(int64_t r, int64_t acc) const { counts[r] = acc; }
};

// Its second: starts[r] = counts[0] + ... + counts[r - 1], for r up to the number of chunks (the
// last is the total).
struct ChunkStartsOp {
  using Acc = int64_t;
  const int64_t* counts;
  int64_t* starts;
  GRAFT_HD int64_t identity() const { return 0; }
  GRAFT_HD int64_t load(int64_t r, int64_t j) const { return j < r ? counts[j] : 0; }
  GRAFT_HD int64_t combine(int64_t a, int64_t b) const { return a + b; }
  GRAFT_HD void store(int64_t r, int64_t acc) const { starts[r] = acc; }
};

// Its third, one thread per chunk: the coordinates of each non-zero element, in order, into
// column starts[r]... of the [rank, total] output.
template <typename T>
struct WriteNonZeroFn {
  const T* x;
  int64_t n;
  int64_t chunk;
  const int64_t* starts;
  int64_t* y;
  int64_t total;
  Dims in;
  GRAFT_HD void operator()(int64_t r) const {
    int64_t column = starts[r];
    const int64_t end = r * chunk + chunk < n ? r * chunk + chunk : n;
    for (int64_t i = r * chunk; i < end; ++i) {
      if (!is_nonzero(x[i])) continue;
      int64_t rest = i;
      for (int d = in.rank - 1; d >= 0; --d) {
        const int64_t q = rest / in.dims[d];
        y[d * total + column] = rest - q * in.dims[d];
        rest = q;
      }
      ++column;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Generators.

// Range: start, limit and delta are host inputs, read and counted on the host; the elements are
// computed on the device.
template <class B>
class RangeKernel final : public DeviceKernel<B> {
 public:
  explicit RangeKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    const Tensor& start = ctx.input(0);
    const Tensor& limit = ctx.input(1);
    const Tensor& delta = ctx.input(2);
    if (start.dtype() != limit.dtype() || start.dtype() != delta.dtype())
      ctx.fail("start, limit and delta differ in dtype");
    if (start.size() != 1 || limit.size() != 1 || delta.size() != 1)
      ctx.fail("start, limit and delta must be scalars");
    dispatch_device_number(start.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = std::conditional_t<std::is_integral_v<T> || std::is_same_v<T, double>, T, float>;
      const C first = static_cast<C>(widen(start.data<T>()[0]));
      const C step = static_cast<C>(widen(delta.data<T>()[0]));
      const int64_t count =
          range_count(ctx, first, static_cast<C>(widen(limit.data<T>()[0])), step);
      Tensor& y = ctx.output(0, start.dtype(), {count});
      this->backend().for_each(count, RangeFn<T, C>{y.data<T>(), first, step});
    });
  }
};

template <class B>
class ConstantOfShapeKernel final : public DeviceKernel<B> {
 public:
  explicit ConstantOfShapeKernel(const KernelInfo& info) : DeviceKernel<B>(info) {
    if (info.has_attr("value")) {
      value_ = info.attr_tensor("value");
      if (value_.size() != 1) info.fail("value must hold exactly one element");
    } else {
      value_ = Tensor(DType::Float, {1});
    }
  }
  void compute(KernelContext& ctx) override {
    Tensor& y = ctx.output(0, value_.dtype(), shape_from_input(ctx, ctx.input(0)));
    dispatch_device_bytes(value_.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      T v;
      std::memcpy(&v, value_.raw(), sizeof(T));
      this->backend().for_each(y.size(), FillFn<T>{y.data<T>(), v});
    });
  }

 private:
  Tensor value_;  // host memory
};

// NonZero's output shape depends on the values, so the host must learn the count: it counts the
// non-zero elements per chunk on the device (a reduction), adds the counts up into each chunk's
// first output column (another), reads the total back, allocates [rank, total] and lets one thread
// per chunk write its coordinates. Reading the total back is a synchronization point: the host
// waits until the compute stream has run everything queued before it (copy_to_host), as it does
// for MemcpyToHost. Chunks hold at least kChunk elements and about sqrt(n), so the second
// reduction reads no more elements than the first.
template <class B>
class NonZeroKernel final : public DeviceKernel<B> {
 public:
  static constexpr int64_t kChunk = 2048;
  explicit NonZeroKernel(const KernelInfo& info) : DeviceKernel<B>(info) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Dims in = dims_of(ctx, x.shape());
    const int64_t n = x.size();
    if (n == 0) {
      ctx.output(0, DType::Int64, {x.rank(), 0});
      return;
    }
    const int64_t chunk =
        std::max(kChunk, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n)))));
    const int64_t chunks = (n + chunk - 1) / chunk;
    B& backend = this->backend();
    // counts[0, chunks), then starts[0, chunks] with the total last.
    Tensor scratch = Tensor::empty(DType::Int64, {2 * chunks + 1}, backend.allocator());
    int64_t* counts = scratch.data<int64_t>();
    int64_t* starts = counts + chunks;
    int64_t total = 0;
    dispatch_device_numeric(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      backend.reduce_rows(chunks, chunk, CountNonZeroOp<T>{x.data<T>(), n, chunk, counts});
      backend.reduce_rows(chunks + 1, chunks, ChunkStartsOp{counts, starts});
      backend.allocator().copy_to_host(&total, starts + chunks, sizeof(total));
      Tensor& y = ctx.output(0, DType::Int64, {x.rank(), total});
      if (y.size() == 0) return;
      backend.for_each(
          chunks, WriteNonZeroFn<T>{x.data<T>(), n, chunk, starts, y.data<int64_t>(), total, in});
    });
  }
};

}  // namespace graft::cuda
