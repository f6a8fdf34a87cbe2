// Binarizer (ai.onnx.ml): 1 where X > threshold, else 0, in X's type.
#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class Binarizer final : public Kernel {
 public:
  explicit Binarizer(const KernelInfo& info) : threshold_(info.attr_float("threshold", 0.0f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_number(x.dtype(), "Binarizer", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* in = x.data<T>();
      T* out = y.data<T>();
      for (int64_t i = 0; i < x.size(); ++i) {
        out[i] = static_cast<T>(static_cast<double>(in[i]) > threshold_ ? 1.0f : 0.0f);
      }
    });
  }

 private:
  double threshold_;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_binarizer) {
  reg.add({ml::kMlDomain, "Binarizer", 1, 1 << 30, ml::kMlNumericTypes, 0, make<Binarizer>});
}

}  // namespace graft
