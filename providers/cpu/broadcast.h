// NumPy-style multidirectional broadcasting for CPU kernels.
//
//   Shape out = broadcast_shapes({a.shape(), b.shape()}, ctx.describe());
//   Tensor& y = ctx.output(0, DType::Float, out);
//   broadcast_map<float, float, float>(y, [](float x, float z) { return x + z; }, a, b);
//
// BroadcastPlan is the lower level: it collapses the output into runs of contiguous elements
// along which every input either advances by one element or stays put, so inner loops are flat.
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "exec/error.h"
#include "exec/tensor.h"

namespace graft {

class BroadcastPlan {
 public:
  // Plans reading each of `inputs` broadcast to `output` (which must be their broadcast shape,
  // or any shape every input broadcasts to, as Expand uses). Throws InvalidArgument otherwise.
  BroadcastPlan(const std::vector<Shape>& inputs, const Shape& output, const std::string& who = "");

  const Shape& output_shape() const { return output_; }
  int64_t output_size() const { return shape_size(output_); }
  int num_inputs() const { return static_cast<int>(inner_strides_.size()); }
  // Elements in each contiguous output run, and how many runs there are.
  int64_t inner() const { return inner_; }
  int64_t outer() const { return outer_; }
  // 1 when input `i` advances along a run, 0 when it is repeated.
  int64_t inner_stride(int i) const { return inner_strides_[static_cast<size_t>(i)]; }
  // Element offset of input `i` at the start of run `run`.
  int64_t input_offset(int i, int64_t run) const;

  // Calls fn(out_offset, in_offsets, count) over the whole output, where in_offsets[i] is
  // input i's element offset for output element out_offset, and the next `count` output
  // elements read input i at in_offsets[i] + k * inner_stride(i). Long runs are split into
  // chunks; chunks run in parallel (OpenMP) when the output is large, so fn must only write
  // its own output range.
  template <typename F>
  void for_each_chunk(F&& fn) const;

 private:
  Shape output_;
  int64_t inner_ = 1;
  int64_t outer_ = 0;
  Shape outer_dims_;                    // collapsed outer dims, outermost first
  std::vector<Shape> outer_strides_;    // per input, per outer dim; 0 where broadcast
  std::vector<int64_t> inner_strides_;  // per input, 0 or 1
};

// Output elements per chunk, and the output size from which chunks run in parallel.
inline constexpr int64_t kBroadcastChunk = 1 << 14;
inline constexpr int64_t kBroadcastParallelMin = 1 << 16;

template <typename F>
void BroadcastPlan::for_each_chunk(F&& fn) const {
  const int n = num_inputs();
  if (outer_ == 0 || inner_ == 0) return;
  const int64_t per_run = (inner_ + kBroadcastChunk - 1) / kBroadcastChunk;
  const int64_t tasks = outer_ * per_run;
  auto task = [&](int64_t t) {
    const int64_t run = t / per_run;
    const int64_t start = (t % per_run) * kBroadcastChunk;
    const int64_t count = std::min(kBroadcastChunk, inner_ - start);
    std::array<int64_t, 8> small{};
    std::vector<int64_t> large;
    int64_t* offsets = small.data();
    if (n > static_cast<int>(small.size())) {
      large.resize(static_cast<size_t>(n));
      offsets = large.data();
    }
    for (int i = 0; i < n; ++i) offsets[i] = input_offset(i, run) + start * inner_stride(i);
    fn(run * inner_ + start, static_cast<const int64_t*>(offsets), count);
  };
  if (output_size() >= kBroadcastParallelMin && tasks > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
}

// out[k] = op(inputs[k]...) with every input broadcast to out's shape. TO is out's element
// type and TI... the inputs' (as stored, e.g. Float16); op takes and returns them as it likes.
// `out` must already have the broadcast shape. Throws InvalidArgument when an input does not
// broadcast to it.
template <typename TO, typename... TI, typename Op, typename... Tensors>
void broadcast_map(Tensor& out, Op&& op, const Tensors&... inputs) {
  static_assert(sizeof...(TI) == sizeof...(Tensors), "one element type per input");
  BroadcastPlan plan({inputs.shape()...}, out.shape());
  TO* y = out.data<TO>();
  std::tuple<const TI*...> bases{inputs.template data<TI>()...};
  plan.for_each_chunk([&](int64_t o, const int64_t* offs, int64_t count) {
    [&]<size_t... I>(std::index_sequence<I...>) {
      auto ptrs = std::make_tuple((std::get<I>(bases) + offs[I])...);
      const bool all_contiguous = ((plan.inner_stride(static_cast<int>(I)) == 1) && ...);
      TO* dst = y + o;
      if (all_contiguous) {
        for (int64_t k = 0; k < count; ++k) dst[k] = static_cast<TO>(op(std::get<I>(ptrs)[k]...));
      } else if constexpr (sizeof...(I) == 2) {
        const auto* a = std::get<0>(ptrs);
        const auto* b = std::get<1>(ptrs);
        if (plan.inner_stride(0) == 1 && plan.inner_stride(1) == 0) {
          const auto bv = b[0];
          for (int64_t k = 0; k < count; ++k) dst[k] = static_cast<TO>(op(a[k], bv));
        } else if (plan.inner_stride(0) == 0 && plan.inner_stride(1) == 1) {
          const auto av = a[0];
          for (int64_t k = 0; k < count; ++k) dst[k] = static_cast<TO>(op(av, b[k]));
        } else {
          const auto v = static_cast<TO>(op(a[0], b[0]));
          for (int64_t k = 0; k < count; ++k) dst[k] = v;
        }
      } else {
        const std::array<int64_t, sizeof...(I)> s{plan.inner_stride(static_cast<int>(I))...};
        for (int64_t k = 0; k < count; ++k) {
          dst[k] = static_cast<TO>(op(std::get<I>(ptrs)[k * s[I]]...));
        }
      }
    }
    (std::index_sequence_for<TI...>{});
  });
}

}  // namespace graft
