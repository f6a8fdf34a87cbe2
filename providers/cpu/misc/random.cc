// Random generators: RandomUniform, RandomNormal, their *Like forms, Multinomial and Bernoulli.
// With a `seed` attribute a node's draws are reproducible: its generator is seeded once when
// the session is built and advances from run to run. Without one, nodes draw from the process's
// default generator (exec/generator.h), which graft.seed() seeds and checkpoints carry.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/generator.h"
#include "exec/kernel.h"

namespace graft {
namespace {

class RandomKernel : public Kernel {
 public:
  explicit RandomKernel(const KernelInfo& info)
      : seeded_(info.has_attr("seed")),
        engine_(seeded_ ? own_engine_ : default_generator().engine()),
        mutex_(seeded_ ? own_mutex_ : default_generator().mutex()) {
    if (seeded_) {
      const float seed = info.attr_float("seed", 0.0f);
      own_engine_.seed(static_cast<uint64_t>(static_cast<int64_t>(seed)));
    }
  }

 protected:
  // Fills `y` (a float type) with draws of `dist` (a double distribution).
  template <typename Dist>
  void fill(Tensor& y, Dist dist) {
    std::lock_guard<std::mutex> lock(mutex_);
    dispatch_float(y.dtype(), "random", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* out = y.data<T>();
      for (int64_t i = 0; i < y.size(); ++i) out[i] = T(dist(engine_));
    });
  }

  // A seeded node has its own engine; the others share the process's default generator.
  bool seeded_;
  std::mt19937_64 own_engine_;
  std::mutex own_mutex_;

 protected:
  std::mt19937_64& engine_;
  std::mutex& mutex_;
};

DType float_dtype(const KernelInfo& info, DType fallback) {
  const auto dtype = static_cast<DType>(info.attr_int("dtype", static_cast<int64_t>(fallback)));
  if (dtype != DType::Undefined && !dtype_is_float(dtype)) {
    info.fail(std::string("dtype must be a float type, got ") + dtype_name(dtype));
  }
  return dtype;
}

// Output dtype of a *Like op: the dtype attribute, else the input's.
DType like_dtype(const KernelContext& ctx, DType attr, const Tensor& x) {
  const DType dtype = attr != DType::Undefined ? attr : x.dtype();
  if (!dtype_is_float(dtype)) {
    ctx.fail(std::string("cannot draw values of dtype ") + dtype_name(dtype) +
             "; set the dtype attribute to a float type");
  }
  return dtype;
}

// RandomUniform / RandomUniformLike: low + (high - low) * U[0, 1).
class RandomUniform final : public RandomKernel {
 public:
  explicit RandomUniform(const KernelInfo& info)
      : RandomKernel(info),
        like_(info.op_type() == "RandomUniformLike"),
        dtype_(float_dtype(info, like_ ? DType::Undefined : DType::Float)),
        low_(info.attr_float("low", 0.0f)),
        high_(info.attr_float("high", 1.0f)),
        shape_(info.attr_ints("shape")) {
    if (!like_ && !info.has_attr("shape")) info.fail("the shape attribute is required");
    for (int64_t d : shape_) {
      if (d < 0) info.fail("shape has a negative dim");
    }
  }

  void compute(KernelContext& ctx) override {
    const DType dtype = like_ ? like_dtype(ctx, dtype_, ctx.input(0)) : dtype_;
    Tensor& y = ctx.output(0, dtype, like_ ? ctx.input(0).shape() : shape_);
    if (!(high_ > low_)) {
      fill(y, [&](auto&) { return static_cast<double>(low_); });
      return;
    }
    fill(y, std::uniform_real_distribution<double>(low_, high_));
  }

 private:
  bool like_;
  DType dtype_;
  float low_, high_;
  Shape shape_;
};

// RandomNormal / RandomNormalLike: mean + scale * N(0, 1).
class RandomNormal final : public RandomKernel {
 public:
  explicit RandomNormal(const KernelInfo& info)
      : RandomKernel(info),
        like_(info.op_type() == "RandomNormalLike"),
        dtype_(float_dtype(info, like_ ? DType::Undefined : DType::Float)),
        mean_(info.attr_float("mean", 0.0f)),
        scale_(info.attr_float("scale", 1.0f)),
        shape_(info.attr_ints("shape")) {
    if (!like_ && !info.has_attr("shape")) info.fail("the shape attribute is required");
    for (int64_t d : shape_) {
      if (d < 0) info.fail("shape has a negative dim");
    }
  }

  void compute(KernelContext& ctx) override {
    const DType dtype = like_ ? like_dtype(ctx, dtype_, ctx.input(0)) : dtype_;
    Tensor& y = ctx.output(0, dtype, like_ ? ctx.input(0).shape() : shape_);
    std::normal_distribution<double> dist(0.0, 1.0);
    const double mean = mean_, scale = scale_;
    fill(y, [&](auto& engine) { return mean + scale * dist(engine); });
  }

 private:
  bool like_;
  DType dtype_;
  float mean_, scale_;
  Shape shape_;
};

// Multinomial: `sample_size` class indices per batch row, drawn with probabilities
// proportional to exp(input).
class Multinomial final : public RandomKernel {
 public:
  explicit Multinomial(const KernelInfo& info)
      : RandomKernel(info),
        dtype_(static_cast<DType>(info.attr_int("dtype", static_cast<int64_t>(DType::Int32)))),
        sample_size_(info.attr_int("sample_size", 1)) {
    if (dtype_ != DType::Int32 && dtype_ != DType::Int64) info.fail("dtype must be int32 or int64");
    if (sample_size_ < 0) info.fail("sample_size must be >= 0");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 2)
      ctx.fail("input must have shape [batch, classes], got " + shape_to_string(x.shape()));
    const int64_t batch = x.dim(0), classes = x.dim(1);
    if (classes == 0 && batch > 0 && sample_size_ > 0) ctx.fail("input has no classes");
    Tensor& y = ctx.output(0, dtype_, {batch, sample_size_});
    std::vector<double> cumulative(static_cast<size_t>(classes));
    std::lock_guard<std::mutex> lock(mutex_);
    dispatch_float(x.dtype(), "Multinomial", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* logits = x.data<T>();
      for (int64_t b = 0; b < batch; ++b) {
        const T* row = logits + b * classes;
        double top = -INFINITY;
        for (int64_t c = 0; c < classes; ++c) top = std::max(top, static_cast<double>(row[c]));
        double total = 0;
        for (int64_t c = 0; c < classes; ++c) {
          const double v = static_cast<double>(row[c]);
          total += std::isfinite(top) ? std::exp(v - top) : (v == top ? 1.0 : 0.0);
          cumulative[static_cast<size_t>(c)] = total;
        }
        std::uniform_real_distribution<double> dist(0.0, total);
        for (int64_t s = 0; s < sample_size_; ++s) {
          const double u = dist(engine_);
          auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
          int64_t pick = std::min<int64_t>(it - cumulative.begin(), classes - 1);
          if (dtype_ == DType::Int32) {
            y.data<int32_t>()[b * sample_size_ + s] = static_cast<int32_t>(pick);
          } else {
            y.data<int64_t>()[b * sample_size_ + s] = pick;
          }
        }
      }
    });
  }

 private:
  DType dtype_;
  int64_t sample_size_;
};

// Bernoulli: 1 with the probability the input gives, else 0.
class Bernoulli final : public RandomKernel {
 public:
  explicit Bernoulli(const KernelInfo& info)
      : RandomKernel(info),
        dtype_(static_cast<DType>(info.attr_int("dtype", static_cast<int64_t>(DType::Undefined)))) {
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const DType dtype = dtype_ != DType::Undefined ? dtype_ : x.dtype();
    Tensor& y = ctx.output(0, dtype, x.shape());
    std::vector<uint8_t> draws(static_cast<size_t>(x.size()));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::uniform_real_distribution<double> dist(0.0, 1.0);
      dispatch_float(x.dtype(), "Bernoulli", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const T* p = x.data<T>();
        for (int64_t i = 0; i < x.size(); ++i) {
          draws[static_cast<size_t>(i)] = dist(engine_) < static_cast<double>(p[i]);
        }
      });
    }
    dispatch_numeric(dtype, "Bernoulli output", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* out = y.data<T>();
      for (int64_t i = 0; i < x.size(); ++i) {
        if constexpr (std::is_same_v<T, bool>) {
          out[i] = draws[static_cast<size_t>(i)] != 0;
        } else {
          out[i] = T(static_cast<float>(draws[static_cast<size_t>(i)]));
        }
      }
    });
  }

 private:
  DType dtype_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_random) {
  const std::vector<DType> float_types = {DType::Float, DType::Double, DType::Float16,
                                          DType::BFloat16};
  reg.add({"", "RandomUniform", 1, 1 << 30, {}, 0, make<RandomUniform>});
  reg.add({"", "RandomNormal", 1, 1 << 30, {}, 0, make<RandomNormal>});
  reg.add({"", "RandomUniformLike", 1, 1 << 30, {}, 0, make<RandomUniform>, {}, {0}});
  reg.add({"", "RandomNormalLike", 1, 1 << 30, {}, 0, make<RandomNormal>, {}, {0}});
  reg.add({"", "Multinomial", 7, 1 << 30, float_types, 0, make<Multinomial>});
  reg.add({"", "Bernoulli", 15, 1 << 30, float_types, 0, make<Bernoulli>});
}

}  // namespace graft
