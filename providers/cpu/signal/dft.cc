// DFT and STFT. Signals hold real (trailing dim 1) or complex (trailing dim 2) values; outputs
// are complex, except an inverse one-sided DFT, which returns the real signal.
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/signal/fft.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

using signal::Complex;
using signal::FftPlan;

int64_t scalar_input(const KernelContext& ctx, int i, const char* name) {
  const Tensor& t = ctx.input(i);
  if (t.size() != 1) ctx.fail(std::string(name) + " must be a scalar");
  return t.scalar_as_int();
}

class DFT final : public Kernel {
 public:
  explicit DFT(const KernelInfo& info)
      : axis_input_(info.since_version() >= 20),
        axis_(info.attr_int("axis", 1)),
        inverse_(info.attr_int("inverse", 0) != 0),
        onesided_(info.attr_int("onesided", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    if (rank < 2 || (x.dim(rank - 1) != 1 && x.dim(rank - 1) != 2)) {
      ctx.fail("input must end in a dim of 1 (real) or 2 (complex), got " +
               shape_to_string(x.shape()));
    }
    int64_t axis = axis_input_ ? -2 : axis_;
    if (axis_input_ && ctx.has_input(2)) axis = scalar_input(ctx, 2, "axis");
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank - 2) {
      ctx.fail("axis " + std::to_string(axis) + " is out of range for input rank " +
               std::to_string(rank) + " (the last dim holds the complex parts)");
    }
    const int64_t in_len = x.dim(axis);
    int64_t n = inverse_ && onesided_ ? 2 * (in_len - 1) : in_len;
    if (ctx.has_input(1)) n = scalar_input(ctx, 1, "dft_length");
    if (n < 1) ctx.fail("dft_length must be positive, got " + std::to_string(n));
    const int64_t in_parts = x.dim(rank - 1);
    const bool real_out = inverse_ && onesided_;
    const int64_t out_len = !inverse_ && onesided_ ? n / 2 + 1 : n;
    const int64_t out_parts = real_out ? 1 : 2;
    Shape out_shape = x.shape();
    out_shape[static_cast<size_t>(axis)] = out_len;
    out_shape.back() = out_parts;
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    const auto ax = static_cast<size_t>(axis);
    const int64_t outer = tensor_ops::product(x.shape(), 0, ax);
    const int64_t inner = tensor_ops::product(x.shape(), ax + 1, x.shape().size() - 1);
    const FftPlan plan(n, inverse_);
    const double scale = inverse_ ? 1.0 / static_cast<double>(n) : 1.0;
    dispatch_float(x.dtype(), "DFT", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (y.size() > (1 << 14) && outer * inner > 1)
      for (int64_t row = 0; row < outer * inner; ++row) {
        const int64_t o = row / inner, i = row % inner;
        std::vector<Complex> buf(static_cast<size_t>(n), Complex(0, 0));
        const int64_t parts = in_parts;  // a local of the loop, which the lambda may capture
        auto read = [&](int64_t t) {
          const T* p = src + ((o * in_len + t) * inner + i) * parts;
          return Complex(static_cast<double>(p[0]), parts == 2 ? static_cast<double>(p[1]) : 0.0);
        };
        if (real_out) {
          // A one-sided spectrum: rebuild the Hermitian-symmetric full one.
          for (int64_t k = 0; k <= n / 2 && k < in_len; ++k) buf[static_cast<size_t>(k)] = read(k);
          for (int64_t k = n / 2 + 1; k < n; ++k) {
            buf[static_cast<size_t>(k)] = std::conj(buf[static_cast<size_t>(n - k)]);
          }
        } else {
          for (int64_t t = 0; t < std::min(n, in_len); ++t) buf[static_cast<size_t>(t)] = read(t);
        }
        plan.run(buf.data());
        for (int64_t k = 0; k < out_len; ++k) {
          T* q = dst + ((o * out_len + k) * inner + i) * out_parts;
          const Complex v = buf[static_cast<size_t>(k)] * scale;
          q[0] = T(v.real());
          if (!real_out) q[1] = T(v.imag());
        }
      }
    });
  }

 private:
  bool axis_input_;
  int64_t axis_;
  bool inverse_;
  bool onesided_;
};

// STFT: the DFT of each window-weighted frame of `frame_length` samples, frames starting every
// `frame_step` samples. Output [batch, frames, bins, 2].
class STFT final : public Kernel {
 public:
  explicit STFT(const KernelInfo& info) : onesided_(info.attr_int("onesided", 1) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2)) {
      ctx.fail("signal must have shape [batch, length, 1 or 2], got " + shape_to_string(x.shape()));
    }
    const int64_t step = scalar_input(ctx, 1, "frame_step");
    if (step < 1) ctx.fail("frame_step must be positive");
    std::vector<double> window;
    if (ctx.has_input(2)) {
      const Tensor& w = ctx.input(2);
      if (w.rank() != 1) ctx.fail("window must be 1-D");
      for (int64_t k = 0; k < w.size(); ++k) window.push_back(w.scalar_as_double(k));
    }
    const int64_t batch = x.dim(0), length = x.dim(1), parts = x.dim(2);
    int64_t frame_length = window.empty() ? length : static_cast<int64_t>(window.size());
    if (ctx.has_input(3)) frame_length = scalar_input(ctx, 3, "frame_length");
    if (window.empty()) window.assign(static_cast<size_t>(std::max<int64_t>(frame_length, 0)), 1.0);
    if (static_cast<int64_t>(window.size()) != frame_length) {
      ctx.fail("window has " + std::to_string(window.size()) + " entries but frame_length is " +
               std::to_string(frame_length));
    }
    if (frame_length < 1 || frame_length > length) {
      ctx.fail("frame_length " + std::to_string(frame_length) + " does not fit a signal of " +
               std::to_string(length));
    }
    const int64_t frames = 1 + (length - frame_length) / step;
    const int64_t bins = onesided_ ? frame_length / 2 + 1 : frame_length;
    Tensor& y = ctx.output(0, x.dtype(), {batch, frames, bins, 2});
    const FftPlan plan(frame_length, false);
    dispatch_float(x.dtype(), "STFT", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (y.size() > (1 << 14) && batch * frames > 1)
      for (int64_t task = 0; task < batch * frames; ++task) {
        const int64_t b = task / frames, f = task % frames;
        std::vector<Complex> buf(static_cast<size_t>(frame_length));
        for (int64_t t = 0; t < frame_length; ++t) {
          const T* p = src + (b * length + f * step + t) * parts;
          const double w = window[static_cast<size_t>(t)];
          buf[static_cast<size_t>(t)] = Complex(static_cast<double>(p[0]) * w,
                                                parts == 2 ? static_cast<double>(p[1]) * w : 0.0);
        }
        plan.run(buf.data());
        T* q = dst + task * bins * 2;
        for (int64_t k = 0; k < bins; ++k) {
          q[2 * k] = T(buf[static_cast<size_t>(k)].real());
          q[2 * k + 1] = T(buf[static_cast<size_t>(k)].imag());
        }
      }
    });
  }

 private:
  bool onesided_;
};

}  // namespace

GRAFT_CPU_KERNELS(signal_dft) {
  const std::vector<DType> types = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};
  reg.add({"", "DFT", 17, 1 << 30, types, 0, make<DFT>});
  reg.add({"", "STFT", 17, 1 << 30, types, 0, make<STFT>});
}

}  // namespace graft
