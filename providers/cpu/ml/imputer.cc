// Imputer (ai.onnx.ml): replaces every element equal to the replaced value (NaN matches NaN)
// by the imputed value of its feature (last axis), or by the single imputed value.
#include <cmath>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class Imputer final : public Kernel {
 public:
  explicit Imputer(const KernelInfo& info)
      : float_values_(info.attr_floats("imputed_value_floats")),
        int_values_(info.attr_ints("imputed_value_int64s")),
        replaced_float_(info.attr_float("replaced_value_float", 0.0f)),
        replaced_int_(info.attr_int("replaced_value_int64", 0)) {
    if (float_values_.empty() && int_values_.empty()) {
      info.fail("one of imputed_value_floats and imputed_value_int64s must be given");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const bool is_float = dtype_is_float(x.dtype());
    const size_t count = is_float ? float_values_.size() : int_values_.size();
    if (count == 0) {
      ctx.fail(std::string(is_float ? "imputed_value_floats" : "imputed_value_int64s") +
               " is needed for " + dtype_name(x.dtype()) + " input");
    }
    const int64_t features = x.rank() == 0 ? 1 : x.dim(x.rank() - 1);
    if (count != 1 && static_cast<int64_t>(count) != features) {
      ctx.fail("expected 1 or " + std::to_string(features) + " imputed values, got " +
               std::to_string(count));
    }
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_number(x.dtype(), "Imputer", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* in = x.data<T>();
      T* out = y.data<T>();
      for (int64_t i = 0; i < x.size(); ++i) {
        const size_t f = count == 1 ? 0 : static_cast<size_t>(i % features);
        if (is_float) {
          const float v = static_cast<float>(in[i]);
          const bool hit = std::isnan(replaced_float_) ? std::isnan(v) : v == replaced_float_;
          out[i] = hit ? static_cast<T>(float_values_[f]) : in[i];
        } else {
          const auto v = static_cast<int64_t>(in[i]);
          out[i] = v == replaced_int_ ? static_cast<T>(int_values_[f]) : in[i];
        }
      }
    });
  }

 private:
  std::vector<float> float_values_;
  std::vector<int64_t> int_values_;
  float replaced_float_;
  int64_t replaced_int_;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_imputer) {
  reg.add({ml::kMlDomain, "Imputer", 1, 1 << 30, ml::kMlNumericTypes, 0, make<Imputer>});
}

}  // namespace graft
