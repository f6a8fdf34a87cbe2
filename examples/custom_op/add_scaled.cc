// A custom-op library for graft: com.example.AddScaled, Y = A + alpha * B over float tensors of
// one shape. Built as a shared library against graft's headers, it registers its kernel with
// graft's CPU provider when it loads:
//
//   g++ -std=c++20 -shared -fPIC -I<graft> add_scaled.cc -o libadd_scaled.so
//
// For Python it is not linked with libgraft (its graft symbols resolve to graft._C's); a C++
// program that links libgraft links it with -lgraft as well. Then
//
//   so = graft.SessionOptions()
//   so.register_custom_ops_library("libadd_scaled.so")
//   graft.InferenceSession("model_using_add_scaled.onnx", so)
//
// runs models that use the op (tests/python/ort_api/test_ort_custom_ops.py builds and uses it).
#include <string>

#include "exec/kernel.h"

namespace {

class AddScaled final : public graft::Kernel {
 public:
  explicit AddScaled(const graft::KernelInfo& info) : alpha_(info.attr_float("alpha", 1.0f)) {}

  void compute(graft::KernelContext& ctx) override {
    const graft::Tensor& a = ctx.input(0);
    const graft::Tensor& b = ctx.input(1);
    if (a.dtype() != graft::DType::Float || b.dtype() != graft::DType::Float)
      ctx.fail("A and B must hold float");
    if (a.shape() != b.shape()) {
      ctx.fail("A " + graft::shape_to_string(a.shape()) + " and B " +
               graft::shape_to_string(b.shape()) + " differ in shape");
    }
    graft::Tensor& y = ctx.output(0, graft::DType::Float, a.shape());
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    for (int64_t i = 0; i < a.size(); ++i) py[i] = pa[i] + alpha_ * pb[i];
  }

 private:
  float alpha_;
};

}  // namespace

GRAFT_CPU_KERNELS(add_scaled) {
  reg.add(
      {"com.example", "AddScaled", 1, 1 << 30, {graft::DType::Float}, 0, graft::make<AddScaled>});
}
