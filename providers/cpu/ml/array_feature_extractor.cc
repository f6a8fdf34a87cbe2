// ArrayFeatureExtractor (ai.onnx.ml): picks entries of X's last axis by index. A 1-D X gives a
// [1, K] result, as in onnxruntime.
#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class ArrayFeatureExtractor final : public Kernel {
 public:
  explicit ArrayFeatureExtractor(const KernelInfo& info) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (x.rank() == 0) ctx.fail("X must have rank 1 or more");
    if (y.dtype() != DType::Int64)
      ctx.fail(std::string("Y must be int64, got ") + dtype_name(y.dtype()));
    const int64_t stride = x.dim(x.rank() - 1);
    const int64_t count = y.size();
    if (count == 0) ctx.fail("Y holds no index");
    std::vector<int64_t> columns(static_cast<size_t>(count));
    const int64_t* idx = y.data<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      int64_t c = idx[i];
      if (c < -stride || c >= stride) {
        ctx.fail("index " + std::to_string(c) + " is out of range for a last dimension of " +
                 std::to_string(stride));
      }
      columns[static_cast<size_t>(i)] = c < 0 ? c + stride : c;
    }
    Shape shape = x.rank() == 1 ? Shape{1, count} : x.shape();
    shape.back() = count;
    Tensor& z = ctx.output(0, x.dtype(), shape);
    const int64_t rows = x.size() / stride;
    dispatch_by_size(x.dtype(), "ArrayFeatureExtractor", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* in = x.data<T>();
      T* out = z.data<T>();
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < count; ++i)
          out[r * count + i] = in[r * stride + columns[static_cast<size_t>(i)]];
      }
    });
  }
};

const std::vector<DType> kTypes = {DType::Float, DType::Double, DType::Int64, DType::Int32,
                                   DType::String};

}  // namespace

GRAFT_CPU_KERNELS(ml_array_feature_extractor) {
  reg.add(
      {ml::kMlDomain, "ArrayFeatureExtractor", 1, 1 << 30, kTypes, 0, make<ArrayFeatureExtractor>});
}

}  // namespace graft
