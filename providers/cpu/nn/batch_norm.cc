// BatchNormalization. Inference: Y = scale * (X - mean) / sqrt(var + epsilon) + B per channel
// (per channel and position when opset <= 7 says spatial=0). Training (opset 14+ training_mode,
// or is_test=0 before opset 7): the batch statistics normalize X, and the optional outputs
// carry the running statistics (opset 14+) or the updated and saved statistics (before 14).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

// Any float tensor's elements as doubles.
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.size()));
  dispatch_float(t.dtype(), "BatchNormalization", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(t.data<T>()[i]);
  });
  return out;
}

void store_doubles(const std::vector<double>& values, Tensor& t) {
  dispatch_float(t.dtype(), "BatchNormalization", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < values.size(); ++i) t.data<T>()[i] = static_cast<T>(values[i]);
  });
}

class BatchNormalization : public Kernel {
 public:
  explicit BatchNormalization(const KernelInfo& info)
      : epsilon_(info.attr_float("epsilon", 1e-5f)),
        momentum_(info.attr_float("momentum", 0.9f)),
        since_(info.since_version()) {
    if (since_ >= 14)
      training_ = info.attr_int("training_mode", 0) != 0;
    else if (since_ < 7)
      training_ = info.attr_int("is_test", 0) == 0 && info.num_outputs() > 1;
    else
      training_ = info.num_outputs() > 1;
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) ctx.fail("X must have rank 2 or more, got " + shape_to_string(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), inner = x.size() / std::max<int64_t>(1, n * c);
    std::vector<std::vector<double>> params;  // scale, B, mean, var
    for (int i = 1; i <= 4; ++i) {
      params.push_back(as_doubles(ctx.input(i)));
      const int64_t size = static_cast<int64_t>(params.back().size());
      if (size != c && (since_ > 7 || size != c * inner))
        ctx.fail("input " + std::to_string(i) + " has " + std::to_string(size) +
                 " elements, expected " + std::to_string(c));
    }
    const std::vector<double>& scale = params[0];
    const std::vector<double>& bias = params[1];
    std::vector<double>& mean = params[2];
    std::vector<double>& var = params[3];
    const bool per_position = static_cast<int64_t>(scale.size()) != c;
    Tensor& y = ctx.output(0, x.dtype(), x.shape());

    std::vector<double> batch_mean, batch_var;
    if (training_) {
      if (per_position) ctx.fail("training mode needs per-channel statistics");
      batch_mean.assign(static_cast<size_t>(c), 0.0);
      batch_var.assign(static_cast<size_t>(c), 0.0);
      dispatch_float(x.dtype(), "BatchNormalization", [&](auto tag) {
        using T = typename decltype(tag)::type;
        using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
        const T* xp = x.data<T>();
        const double count = static_cast<double>(n * inner);
        // Channels in parallel; each plane is summed in vector lanes and the planes in double.
#pragma omp parallel for if (x.size() > (1 << 15) && !omp_in_parallel())
        for (int64_t ch = 0; ch < c; ++ch) {
          double sum = 0, sum_sq = 0;
          for (int64_t b = 0; b < n; ++b) {
            const T* plane = xp + (b * c + ch) * inner;
            Acc s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < inner; ++i) s += static_cast<Acc>(plane[i]);
            sum += s;
          }
          const double mu = sum / count;
          const Acc m = static_cast<Acc>(mu);
          for (int64_t b = 0; b < n; ++b) {
            const T* plane = xp + (b * c + ch) * inner;
            Acc s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < inner; ++i) {
              const Acc d = static_cast<Acc>(plane[i]) - m;
              s += d * d;
            }
            sum_sq += s;
          }
          batch_mean[static_cast<size_t>(ch)] = mu;
          batch_var[static_cast<size_t>(ch)] = sum_sq / count;
        }
      });
      std::vector<double> running_mean(mean.size()), running_var(var.size());
      for (size_t i = 0; i < mean.size(); ++i) {
        running_mean[i] = mean[i] * momentum_ + batch_mean[i] * (1.0 - momentum_);
        running_var[i] = var[i] * momentum_ + batch_var[i] * (1.0 - momentum_);
      }
      // Opset 14+: (running_mean, running_var). Earlier: (mean, var, saved_mean, saved_var),
      // where mean and var are the updated running statistics.
      const std::vector<const std::vector<double>*> extra =
          since_ >= 14 ? std::vector<const std::vector<double>*>{&running_mean, &running_var}
                       : std::vector<const std::vector<double>*>{&running_mean, &running_var,
                                                                 &batch_mean, &batch_var};
      for (size_t i = 0; i < extra.size(); ++i) {
        const int out = static_cast<int>(i) + 1;
        if (out >= ctx.num_outputs() || !ctx.has_output(out)) continue;
        store_doubles(*extra[i], ctx.output(out, ctx.input(3).dtype(), {c}));
      }
      mean = batch_mean;
      var = batch_var;
    }

    // y = x * a + b per channel (or position).
    std::vector<double> a(scale.size()), shift(scale.size());
    for (size_t i = 0; i < scale.size(); ++i) {
      a[i] = scale[i] / std::sqrt(var[i] + epsilon_);
      shift[i] = bias[i] - mean[i] * a[i];
    }
    dispatch_float(x.dtype(), "BatchNormalization", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = cpu::AccumulateType<T>;
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
#pragma omp parallel for if (x.size() > (1 << 15) && !omp_in_parallel())
      for (int64_t plane = 0; plane < n * c; ++plane) {
        const int64_t ch = plane % c;
        const T* src = xp + plane * inner;
        T* dst = yp + plane * inner;
        if (!per_position) {
          const Acc ma = static_cast<Acc>(a[static_cast<size_t>(ch)]);
          const Acc mb = static_cast<Acc>(shift[static_cast<size_t>(ch)]);
          for (int64_t i = 0; i < inner; ++i)
            dst[i] = static_cast<T>(static_cast<Acc>(src[i]) * ma + mb);
        } else {
          for (int64_t i = 0; i < inner; ++i) {
            const size_t p = static_cast<size_t>(ch * inner + i);
            dst[i] = static_cast<T>(static_cast<Acc>(src[i]) * static_cast<Acc>(a[p]) +
                                    static_cast<Acc>(shift[p]));
          }
        }
      }
    });
  }

 private:
  float epsilon_;
  float momentum_;
  int since_;
  bool training_ = false;
};

}  // namespace

GRAFT_CPU_KERNELS(batch_norm) {
  reg.add({"", "BatchNormalization", 1, 1 << 30, kFloatTypes, 0, make<BatchNormalization>});
}

}  // namespace graft
