// Shared parts of RNN, GRU and LSTM: their attributes (direction, hidden_size, layout, clip,
// activations with alpha and beta), input checks and conversion to a working type (float for
// the half types, else the input type) in sequence-major order, and the output writers.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft::cpu::rnn {

// One of the activation functions the recurrent ops accept.
struct Activation {
  enum class Kind {
    Relu,
    Tanh,
    Sigmoid,
    Affine,
    LeakyRelu,
    ThresholdedRelu,
    ScaledTanh,
    HardSigmoid,
    Elu,
    Softsign,
    Softplus
  };
  Kind kind = Kind::Tanh;
  float alpha = 0.0f, beta = 0.0f;

  // x[i] = f(x[i]) for i < n.
  template <typename T>
  void apply(T* x, int64_t n) const {
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
    switch (kind) {
      case Kind::Relu:
        for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], T(0));
        break;
      case Kind::Tanh:
        for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
        break;
      case Kind::Sigmoid:
        for (int64_t i = 0; i < n; ++i) x[i] = sigmoid(x[i]);
        break;
      case Kind::Affine:
        for (int64_t i = 0; i < n; ++i) x[i] = a * x[i] + b;
        break;
      case Kind::LeakyRelu:
        for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= T(0) ? x[i] : a * x[i];
        break;
      case Kind::ThresholdedRelu:
        for (int64_t i = 0; i < n; ++i) x[i] = x[i] > a ? x[i] : T(0);
        break;
      case Kind::ScaledTanh:
        for (int64_t i = 0; i < n; ++i) x[i] = a * std::tanh(b * x[i]);
        break;
      case Kind::HardSigmoid:
        for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(a * x[i] + b, T(0), T(1));
        break;
      case Kind::Elu:
        for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= T(0) ? x[i] : a * std::expm1(x[i]);
        break;
      case Kind::Softsign:
        for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (T(1) + std::abs(x[i]));
        break;
      case Kind::Softplus:
        // log(1 + e^x) without overflow for large x.
        for (int64_t i = 0; i < n; ++i)
          x[i] = std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
        break;
    }
  }

  template <typename T>
  static T sigmoid(T v) {
    if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
    const T e = std::exp(v);
    return e / (T(1) + e);
  }
};

// The attributes every recurrent op shares.
class RecurrentAttrs {
 public:
  // Reads the attributes; `defaults` are the op's activations for one direction (e.g. Sigmoid,
  // Tanh, Tanh for LSTM). Fails with the node named on an unknown direction or activation, a
  // negative clip or a bad layout.
  RecurrentAttrs(const KernelInfo& info, const std::vector<std::string>& defaults);

  int num_directions() const { return num_directions_; }
  // Whether direction `dir` (0 or 1) runs from the end of each sequence to its start.
  bool reverse(int dir) const { return dir == 1 || reverse_only_; }
  bool batch_major() const { return batch_major_; }
  // hidden_size, or 0 when the attribute is absent (it is then read from R).
  int64_t hidden_size() const { return hidden_size_; }
  // Activation `i` (in the op's order) of direction `dir`.
  const Activation& activation(int dir, int i) const {
    return activations_[static_cast<size_t>(dir) * per_direction_ + static_cast<size_t>(i)];
  }
  // Clamps x[i] to [-clip, clip] when the clip attribute is set.
  template <typename T>
  void clip(T* x, int64_t n) const {
    if (!has_clip_) return;
    const T c = static_cast<T>(clip_);
    for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(x[i], -c, c);
  }

 private:
  int num_directions_ = 1;
  bool reverse_only_ = false;
  bool batch_major_ = false;
  int64_t hidden_size_ = 0;
  bool has_clip_ = false;
  float clip_ = 0.0f;
  size_t per_direction_ = 1;
  std::vector<Activation> activations_;
};

// Sizes of a recurrent problem.
struct RecurrentDims {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1, gates = 1;
};

// The inputs of a recurrent op in the working type T, sequence-major.
template <typename T>
struct RecurrentInputs {
  RecurrentDims dims;
  std::vector<T> x;              // [seq, batch, input]
  std::vector<T> w;              // [dirs, gates * hidden, input]
  std::vector<T> r;              // [dirs, gates * hidden, hidden]
  std::vector<T> b;              // [dirs, 2 * gates * hidden]; zeros when absent
  std::vector<T> h0;             // [dirs, batch, hidden]; zeros when absent
  std::vector<T> c0;             // LSTM only: [dirs, batch, hidden]; zeros when absent
  std::vector<T> p;              // LSTM only: [dirs, 3 * hidden]; zeros when absent
  std::vector<int64_t> lengths;  // per batch entry; seq when sequence_lens is absent
  int64_t max_length = 0;
};

// Checks the shapes of the inputs X, W, R, B, sequence_lens, initial_h (and for LSTM,
// initial_c and P) of an op with `gates` gates and returns their sizes. Fails with the node
// named on any mismatch.
RecurrentDims check_inputs(const KernelContext& ctx, const RecurrentAttrs& attrs, int64_t gates,
                           bool lstm);

// Converts any float tensor to a vector of T; with `batch_major`, a [d0, d1, d2] tensor is
// transposed to [d1, d0, d2] on the way.
template <typename T>
std::vector<T> to_working(const Tensor& t, bool batch_major = false) {
  std::vector<T> out(static_cast<size_t>(t.size()));
  dispatch_float(t.dtype(), "recurrent input", [&](auto tag) {
    using S = typename decltype(tag)::type;
    const S* src = t.data<S>();
    auto convert = [](S v) {
      if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double>)
        return static_cast<T>(v);
      else
        return static_cast<T>(static_cast<float>(v));
    };
    if (!batch_major) {
      for (size_t i = 0; i < out.size(); ++i) out[i] = convert(src[i]);
      return;
    }
    const int64_t d0 = t.dim(0), d1 = t.dim(1), d2 = t.dim(2);
    for (int64_t i = 0; i < d0; ++i)
      for (int64_t j = 0; j < d1; ++j)
        for (int64_t k = 0; k < d2; ++k)
          out[static_cast<size_t>((j * d0 + i) * d2 + k)] = convert(src[(i * d1 + j) * d2 + k]);
  });
  return out;
}

// Reads the checked inputs in the working type.
template <typename T>
RecurrentInputs<T> read_inputs(const KernelContext& ctx, const RecurrentAttrs& attrs, int64_t gates,
                               bool lstm) {
  RecurrentInputs<T> in;
  const RecurrentDims d = check_inputs(ctx, attrs, gates, lstm);
  in.dims = d;
  const bool bm = attrs.batch_major();
  in.x = to_working<T>(ctx.input(0), bm);
  in.w = to_working<T>(ctx.input(1));
  in.r = to_working<T>(ctx.input(2));
  const size_t state = static_cast<size_t>(d.dirs * d.batch * d.hidden);
  auto optional = [&](int i, size_t count, bool transpose) {
    return ctx.has_input(i) ? to_working<T>(ctx.input(i), transpose) : std::vector<T>(count, T(0));
  };
  in.b = optional(3, static_cast<size_t>(d.dirs * 2 * gates * d.hidden), false);
  in.h0 = optional(5, state, bm);
  if (lstm) {
    in.c0 = optional(6, state, bm);
    in.p = optional(7, static_cast<size_t>(d.dirs * 3 * d.hidden), false);
  }
  in.lengths.assign(static_cast<size_t>(d.batch), d.seq);
  if (ctx.has_input(4)) {
    const Tensor& lens = ctx.input(4);
    for (int64_t i = 0; i < d.batch; ++i)
      in.lengths[static_cast<size_t>(i)] = lens.scalar_as_int(i);
  }
  in.max_length = d.batch == 0 ? 0 : *std::max_element(in.lengths.begin(), in.lengths.end());
  return in;
}

// xw[seq * batch, cols] = x[seq * batch, input] * W^T + bias (bias: `cols` values per row).
template <typename T>
std::vector<T> project_inputs(const RecurrentInputs<T>& in, const T* w, int64_t cols,
                              const std::vector<T>& bias) {
  const int64_t rows = in.dims.seq * in.dims.batch;
  std::vector<T> xw(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i) std::copy(bias.begin(), bias.end(), xw.begin() + i * cols);
  gemm<T>(false, true, rows, cols, in.dims.input, in.x.data(), w, xw.data(), true);
  return xw;
}

// Runs OpenMP, and so oneDNN's GEMM, on the calling thread alone while alive, when `enable`.
// A recurrence makes one small GEMM per step; a parallel region each does not repay its
// barrier, and on a loaded machine each barrier can cost a scheduler time slice.
class SerialScope {
 public:
  explicit SerialScope(bool enable) : previous_(omp_get_max_threads()), enabled_(enable) {
    if (enabled_) omp_set_num_threads(1);
  }
  ~SerialScope() {
    if (enabled_) omp_set_num_threads(previous_);
  }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int previous_;
  bool enabled_;
};

// Whether a step's GEMM of `macs` multiply-adds is small enough to run serially.
inline bool serial_steps(int64_t macs) { return macs < (int64_t{1} << 22); }

// The time index step `step` of batch entry `b` processes.
inline int64_t time_index(int64_t step, int64_t length, bool reverse) {
  return reverse ? length - 1 - step : step;
}

// Writes the working-type `values` (shape `shape`) to output `index` as `dtype`.
template <typename T>
void write_output(KernelContext& ctx, int index, DType dtype, const Shape& shape,
                  const std::vector<T>& values) {
  if (!ctx.has_output(index)) return;
  Tensor& out = ctx.output(index, dtype, shape);
  dispatch_float(dtype, "recurrent output", [&](auto tag) {
    using O = typename decltype(tag)::type;
    O* dst = out.data<O>();
    for (size_t i = 0; i < values.size(); ++i) {
      if constexpr (std::is_same_v<O, float> || std::is_same_v<O, double>)
        dst[i] = static_cast<O>(values[i]);
      else
        dst[i] = O(static_cast<float>(values[i]));
    }
  });
}

// Writes Y, held as [seq, dirs, batch, hidden], in the op's layout.
template <typename T>
void write_sequence(KernelContext& ctx, int index, DType dtype, const RecurrentDims& d,
                    bool batch_major, const std::vector<T>& y) {
  if (!ctx.has_output(index)) return;
  if (!batch_major) {
    write_output(ctx, index, dtype, {d.seq, d.dirs, d.batch, d.hidden}, y);
    return;
  }
  std::vector<T> t(y.size());
  for (int64_t s = 0; s < d.seq; ++s)
    for (int64_t k = 0; k < d.dirs; ++k)
      for (int64_t b = 0; b < d.batch; ++b)
        std::copy_n(y.begin() + ((s * d.dirs + k) * d.batch + b) * d.hidden, d.hidden,
                    t.begin() + ((b * d.seq + s) * d.dirs + k) * d.hidden);
  write_output(ctx, index, dtype, {d.batch, d.seq, d.dirs, d.hidden}, t);
}

// Writes a final state (Y_h, Y_c), held as [dirs, batch, hidden], in the op's layout.
template <typename T>
void write_state(KernelContext& ctx, int index, DType dtype, const RecurrentDims& d,
                 bool batch_major, const std::vector<T>& h) {
  if (!ctx.has_output(index)) return;
  if (!batch_major) {
    write_output(ctx, index, dtype, {d.dirs, d.batch, d.hidden}, h);
    return;
  }
  std::vector<T> t(h.size());
  for (int64_t k = 0; k < d.dirs; ++k)
    for (int64_t b = 0; b < d.batch; ++b)
      std::copy_n(h.begin() + (k * d.batch + b) * d.hidden, d.hidden,
                  t.begin() + (b * d.dirs + k) * d.hidden);
  write_output(ctx, index, dtype, {d.batch, d.dirs, d.hidden}, t);
}

}  // namespace graft::cpu::rnn
