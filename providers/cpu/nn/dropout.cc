// Dropout. In inference (and with ratio 0) the output is the input and the mask is all true (all
// ones of T before opset 10). Before opset 12 a node always runs in inference mode (the is_test
// attribute of opsets 1-6 is ignored). From opset 12 a true training_mode input drops each
// element with probability `ratio` and scales the rest by 1 / (1 - ratio). With a `seed`
// attribute the draws are NumPy's legacy RandomState(seed).uniform() sequence, as in the ONNX
// reference, so a seeded node matches it exactly.
#include <mutex>
#include <random>
#include <type_traits>

#include "exec/generator.h"
#include "exec/kernel.h"

namespace graft {
namespace {

class Dropout : public Kernel {
 public:
  explicit Dropout(const KernelInfo& info)
      : since_(info.since_version()),
        ratio_attr_(info.attr_float("ratio", 0.5f)),
        seeded_(info.has_attr("seed")),
        seed_(static_cast<uint32_t>(info.attr_int("seed", 0))) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    bool training = false;
    double ratio = ratio_attr_;
    if (since_ >= 12) {
      if (ctx.has_input(1)) ratio = ctx.input(1).scalar_as_double();
      if (ctx.has_input(2)) training = ctx.input(2).scalar_as_int() != 0;
    }
    if (ratio < 0.0 || ratio > 1.0)
      ctx.fail("ratio must be in [0, 1], got " + std::to_string(ratio));
    const bool want_mask = ctx.num_outputs() > 1 && ctx.has_output(1);
    const DType mask_dtype = since_ >= 10 ? DType::Bool : x.dtype();

    if (!training || ratio == 0.0) {
      ctx.set_output(0, x);
      if (want_mask) {
        Tensor& mask = ctx.output(1, mask_dtype, x.shape());
        if (mask_dtype == DType::Bool) {
          for (int64_t i = 0; i < mask.size(); ++i) mask.data<bool>()[i] = true;
        } else {
          dispatch_float(mask_dtype, "Dropout", [&](auto tag) {
            using T = typename decltype(tag)::type;
            for (int64_t i = 0; i < mask.size(); ++i) mask.data<T>()[i] = static_cast<T>(1.0f);
          });
        }
      }
      return;
    }

    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    std::vector<bool> keep(static_cast<size_t>(x.size()));
    if (seeded_) {
      std::mt19937 generator(seed_);
      draw(generator, ratio, keep);
    } else {
      default_generator().draw([&](std::mt19937_64& engine) { draw(engine, ratio, keep); });
    }
    const double scale = ratio < 1.0 ? 1.0 / (1.0 - ratio) : 0.0;
    dispatch_float(x.dtype(), "Dropout", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const Acc s = static_cast<Acc>(scale);
      for (int64_t i = 0; i < x.size(); ++i)
        y.data<T>()[i] = keep[static_cast<size_t>(i)]
                             ? static_cast<T>(static_cast<Acc>(x.data<T>()[i]) * s)
                             : static_cast<T>(0.0f);
    });
    if (want_mask) {
      Tensor& mask = ctx.output(1, mask_dtype, x.shape());
      if (mask_dtype == DType::Bool) {
        for (int64_t i = 0; i < mask.size(); ++i)
          mask.data<bool>()[i] = keep[static_cast<size_t>(i)];
      } else {
        dispatch_float(mask_dtype, "Dropout", [&](auto tag) {
          using T = typename decltype(tag)::type;
          for (int64_t i = 0; i < mask.size(); ++i)
            mask.data<T>()[i] = static_cast<T>(keep[static_cast<size_t>(i)] ? 1.0f : 0.0f);
        });
      }
    }
  }

 private:
  // NumPy's legacy random_sample: 53 bits from two 32-bit draws (the low bits of the 64-bit
  // default engine's draws when unseeded).
  template <typename Engine>
  static void draw(Engine& generator, double ratio, std::vector<bool>& keep) {
    for (size_t i = 0; i < keep.size(); ++i) {
      const double a = static_cast<double>(static_cast<uint32_t>(generator()) >> 5),
                   b = static_cast<double>(static_cast<uint32_t>(generator()) >> 6);
      keep[i] = (a * 67108864.0 + b) / 9007199254740992.0 >= ratio;
    }
  }

  int since_;
  float ratio_attr_;
  bool seeded_;
  uint32_t seed_;
};

}  // namespace

GRAFT_CPU_KERNELS(dropout) {
  std::vector<DType> types = kFloatTypes;
  types.insert(types.end(), {DType::Float8E4M3FN, DType::Float8E4M3FNUZ, DType::Float8E5M2,
                             DType::Float8E5M2FNUZ});
  reg.add({"", "Dropout", 1, 1 << 30, types, 0, make<Dropout>});
}

}  // namespace graft
