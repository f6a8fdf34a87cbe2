// ZipMap (ai.onnx.ml): each row of a [N, C] float tensor (a 1-D tensor is one row) becomes a map
// from the C class labels to that row's values; the output is the sequence of the N maps.
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class ZipMap final : public Kernel {
 public:
  explicit ZipMap(const KernelInfo& info) {
    const std::vector<int64_t> ints = info.attr_ints("classlabels_int64s");
    const std::vector<std::string> strings = info.attr_strings("classlabels_strings");
    if (ints.empty() == strings.empty()) {
      info.fail("exactly one of classlabels_int64s and classlabels_strings must be given");
    }
    if (strings.empty()) {
      keys_ = Tensor(DType::Int64, {static_cast<int64_t>(ints.size())});
      std::copy(ints.begin(), ints.end(), keys_.data<int64_t>());
    } else {
      keys_ = Tensor(DType::String, {static_cast<int64_t>(strings.size())});
      std::copy(strings.begin(), strings.end(), keys_.data<std::string>());
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float)
      ctx.fail(std::string("X must be float, got ") + dtype_name(x.dtype()));
    if (x.rank() != 1 && x.rank() != 2)
      ctx.fail("X must have rank 1 or 2, got " + shape_to_string(x.shape()));
    const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
    const int64_t columns = x.dim(x.rank() - 1);
    if (columns != keys_.size()) {
      ctx.fail("X has " + std::to_string(columns) + " columns for " + std::to_string(keys_.size()) +
               " labels");
    }
    std::vector<Value> maps;
    maps.reserve(static_cast<size_t>(rows));
    const float* in = x.data<float>();
    for (int64_t r = 0; r < rows; ++r) {
      Tensor values(DType::Float, {columns});
      std::copy_n(in + r * columns, columns, values.data<float>());
      maps.push_back(Value::map(keys_, std::move(values)));
    }
    ctx.set_output(0, Value::sequence(std::move(maps), DType::Float, Value::Kind::Map));
  }

 private:
  Tensor keys_;  // shared, never written after construction
};

}  // namespace

GRAFT_CPU_KERNELS(ml_zip_map) {
  reg.add({ml::kMlDomain, "ZipMap", 1, 1 << 30, {DType::Float}, 0, make<ZipMap>});
}

}  // namespace graft
