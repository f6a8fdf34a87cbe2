// CategoryMapper (ai.onnx.ml): strings to int64 and int64 to strings through the parallel lists
// cats_strings / cats_int64s; values not listed become default_int64 / default_string.
#include <unordered_map>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class CategoryMapper final : public Kernel {
 public:
  explicit CategoryMapper(const KernelInfo& info)
      : default_int_(info.attr_int("default_int64", -1)),
        default_string_(info.attr_string("default_string", "_Unused")) {
    const std::vector<std::string> strings = info.attr_strings("cats_strings");
    const std::vector<int64_t> ints = info.attr_ints("cats_int64s");
    if (strings.size() != ints.size()) {
      info.fail("cats_strings has " + std::to_string(strings.size()) +
                " entries but cats_int64s has " + std::to_string(ints.size()));
    }
    // The first occurrence of a repeated category wins.
    for (size_t i = 0; i < strings.size(); ++i) {
      to_int_.emplace(strings[i], ints[i]);
      to_string_.emplace(ints[i], strings[i]);
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() == DType::String) {
      Tensor& y = ctx.output(0, DType::Int64, x.shape());
      const std::string* in = x.data<std::string>();
      int64_t* out = y.data<int64_t>();
      for (int64_t i = 0; i < x.size(); ++i) {
        auto it = to_int_.find(in[i]);
        out[i] = it == to_int_.end() ? default_int_ : it->second;
      }
    } else if (x.dtype() == DType::Int64) {
      Tensor& y = ctx.output(0, DType::String, x.shape());
      const int64_t* in = x.data<int64_t>();
      std::string* out = y.data<std::string>();
      for (int64_t i = 0; i < x.size(); ++i) {
        auto it = to_string_.find(in[i]);
        out[i] = it == to_string_.end() ? default_string_ : it->second;
      }
    } else {
      ctx.fail(std::string("X must be string or int64, got ") + dtype_name(x.dtype()));
    }
  }

 private:
  int64_t default_int_;
  std::string default_string_;
  std::unordered_map<std::string, int64_t> to_int_;
  std::unordered_map<int64_t, std::string> to_string_;
};

const std::vector<DType> kTypes = {DType::String, DType::Int64};

}  // namespace

GRAFT_CPU_KERNELS(ml_category_mapper) {
  reg.add({ml::kMlDomain, "CategoryMapper", 1, 1 << 30, kTypes, 0, make<CategoryMapper>});
}

}  // namespace graft
