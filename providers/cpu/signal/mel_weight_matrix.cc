// MelWeightMatrix: the [dft_length / 2 + 1, num_mel_bins] matrix of triangular filters that maps
// a one-sided linear spectrum onto the mel scale, bin edges computed as the ONNX reference does.
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"

namespace graft {
namespace {

int64_t int_scalar(const KernelContext& ctx, int i, const char* name) {
  const Tensor& t = ctx.input(i);
  if (t.size() != 1) ctx.fail(std::string(name) + " must be a scalar");
  return t.scalar_as_int();
}

// hertz -> mel as 2595 * log10(1 + hz / 700), rounded through the input's precision first.
double hertz_to_mel(const Tensor& hz) {
  if (hz.dtype() == DType::Double)
    return 2595.0 * std::log1p(hz.scalar_as_double() / 700.0) / std::log(10.0);
  const float f = static_cast<float>(hz.scalar_as_double());
  return static_cast<double>(2595.0f * std::log1p(f / 700.0f)) / std::log(10.0);
}

class MelWeightMatrix final : public Kernel {
 public:
  explicit MelWeightMatrix(const KernelInfo& info)
      : dtype_(static_cast<DType>(
            info.attr_int("output_datatype", static_cast<int64_t>(DType::Float)))) {}

  void compute(KernelContext& ctx) override {
    const int64_t mel_bins = int_scalar(ctx, 0, "num_mel_bins");
    const int64_t dft_length = int_scalar(ctx, 1, "dft_length");
    const int64_t sample_rate = int_scalar(ctx, 2, "sample_rate");
    if (ctx.input(3).size() != 1 || ctx.input(4).size() != 1) {
      ctx.fail("lower_edge_hertz and upper_edge_hertz must be scalars");
    }
    if (mel_bins < 0 || dft_length < 1 || sample_rate < 1) {
      ctx.fail("num_mel_bins must be >= 0, dft_length and sample_rate positive");
    }
    const double low_mel = hertz_to_mel(ctx.input(3));
    const double high_mel = hertz_to_mel(ctx.input(4));
    const int64_t spectrum_bins = dft_length / 2 + 1;
    const double mel_step = (high_mel - low_mel) / static_cast<double>(mel_bins + 2);
    std::vector<int64_t> edges(static_cast<size_t>(mel_bins + 2));
    for (int64_t i = 0; i < mel_bins + 2; ++i) {
      const double mel = static_cast<double>(i) * mel_step + low_mel;
      const double hz = 700.0 * std::expm1(mel / 2595.0 * std::log(10.0));
      edges[static_cast<size_t>(i)] = static_cast<int64_t>(
          std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(sample_rate)));
      // The last edge only bounds the last filter, so it may sit one past the end.
      const int64_t limit = i == mel_bins + 1 ? spectrum_bins : spectrum_bins - 1;
      if (edges[static_cast<size_t>(i)] < 0 || edges[static_cast<size_t>(i)] > limit) {
        ctx.fail("mel bin edge " + std::to_string(edges[static_cast<size_t>(i)]) +
                 " falls outside the " + std::to_string(spectrum_bins) +
                 " spectrum bins; check the edge frequencies against sample_rate");
      }
    }
    std::vector<double> weights(static_cast<size_t>(spectrum_bins * mel_bins), 0.0);
    auto at = [&](int64_t j, int64_t i) -> double& {
      return weights[static_cast<size_t>(j * mel_bins + i)];
    };
    for (int64_t i = 0; i < mel_bins; ++i) {
      const int64_t lo = edges[static_cast<size_t>(i)], center = edges[static_cast<size_t>(i + 1)],
                    hi = edges[static_cast<size_t>(i + 2)];
      if (center == lo) {
        at(center, i) = 1;
      } else {
        for (int64_t j = lo; j <= center; ++j) {
          at(j, i) = static_cast<double>(j - lo) / static_cast<double>(center - lo);
        }
      }
      for (int64_t j = center; j < hi; ++j) {
        at(j, i) = static_cast<double>(hi - j) / static_cast<double>(hi - center);
      }
    }
    Tensor& y = ctx.output(0, dtype_, {spectrum_bins, mel_bins});
    dispatch_number(dtype_, "MelWeightMatrix", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* out = y.data<T>();
      for (size_t k = 0; k < weights.size(); ++k) {
        if constexpr (std::is_integral_v<T>) {
          out[k] = static_cast<T>(weights[k]);
        } else {
          out[k] = T(weights[k]);
        }
      }
    });
  }

 private:
  DType dtype_;
};

}  // namespace

GRAFT_CPU_KERNELS(signal_mel_weight_matrix) {
  reg.add({"", "MelWeightMatrix", 17, 1 << 30, {}, 0, make<MelWeightMatrix>});
}

}  // namespace graft
