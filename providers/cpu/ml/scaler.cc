// Scaler (ai.onnx.ml): Y = (X - offset) * scale as float, with offset and scale given per
// feature (the last axis) or as one value for all.
#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class Scaler final : public Kernel {
 public:
  explicit Scaler(const KernelInfo& info) {
    const std::vector<float> offset = info.attr_floats("offset");
    const std::vector<float> scale = info.attr_floats("scale");
    offset_.assign(offset.begin(), offset.end());
    scale_.assign(scale.begin(), scale.end());
    if (offset_.empty()) offset_.push_back(0.0);
    if (scale_.empty()) scale_.push_back(1.0);
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t features = x.rank() == 0 ? 1 : x.dim(x.rank() - 1);
    for (const auto* v : {&offset_, &scale_}) {
      if (v->size() != 1 && static_cast<int64_t>(v->size()) != features) {
        ctx.fail(std::string(v == &offset_ ? "offset" : "scale") + " holds " +
                 std::to_string(v->size()) + " values; expected 1 or " + std::to_string(features) +
                 " (the number of features)");
      }
    }
    const std::vector<double> in = ml::values_as<double>(x, "Scaler");
    Tensor& y = ctx.output(0, DType::Float, x.shape());
    float* out = y.data<float>();
    const bool per_offset = offset_.size() > 1, per_scale = scale_.size() > 1;
    for (int64_t i = 0; i < x.size(); ++i) {
      const auto f = static_cast<size_t>(i % features);
      const double o = offset_[per_offset ? f : 0];
      const double s = scale_[per_scale ? f : 0];
      out[i] = static_cast<float>((in[static_cast<size_t>(i)] - o) * s);
    }
  }

 private:
  std::vector<double> offset_;
  std::vector<double> scale_;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_scaler) {
  reg.add({ml::kMlDomain, "Scaler", 1, 1 << 30, ml::kMlNumericTypes, 0, make<Scaler>});
}

}  // namespace graft
