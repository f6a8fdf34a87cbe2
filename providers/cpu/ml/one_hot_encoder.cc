// OneHotEncoder (ai.onnx.ml): each element becomes a row of zeros with a one at its category's
// position, adding a last axis of len(cats) to the shape. Numbers are cast to int64 and looked up
// in cats_int64s, strings in cats_strings. With zeros=0 an unknown category is an error.
#include <cmath>
#include <unordered_map>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class OneHotEncoder final : public Kernel {
 public:
  explicit OneHotEncoder(const KernelInfo& info) : zeros_(info.attr_int("zeros", 1) != 0) {
    const std::vector<int64_t> ints = info.attr_ints("cats_int64s");
    const std::vector<std::string> strings = info.attr_strings("cats_strings");
    if (ints.empty() == strings.empty())
      info.fail("exactly one of cats_int64s and cats_strings must be given");
    using_strings_ = !strings.empty();
    count_ = static_cast<int64_t>(using_strings_ ? strings.size() : ints.size());
    for (size_t i = 0; i < ints.size(); ++i) int_index_.emplace(ints[i], static_cast<int64_t>(i));
    for (size_t i = 0; i < strings.size(); ++i)
      string_index_.emplace(strings[i], static_cast<int64_t>(i));
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const bool string_input = x.dtype() == DType::String;
    if (string_input != using_strings_) {
      ctx.fail(std::string(dtype_name(x.dtype())) + " input needs " +
               (string_input ? "cats_strings" : "cats_int64s"));
    }
    Shape shape = x.shape();
    shape.push_back(count_);
    Tensor& y = ctx.output_zeroed(0, DType::Float, shape);
    float* out = y.data<float>();
    for (int64_t i = 0; i < x.size(); ++i) {
      const int64_t slot =
          string_input ? find_string(x.data<std::string>()[i]) : find_number(x.scalar_as_double(i));
      if (slot >= 0) {
        out[i * count_ + slot] = 1.0f;
      } else if (!zeros_) {
        ctx.fail("element " + std::to_string(i) + " is not one of the categories (zeros=0)");
      }
    }
  }

 private:
  int64_t find_string(const std::string& s) const {
    auto it = string_index_.find(s);
    return it == string_index_.end() ? -1 : it->second;
  }

  int64_t find_number(double v) const {
    if (!std::isfinite(v) || std::abs(v) >= 9.2e18) return -1;
    auto it = int_index_.find(static_cast<int64_t>(v));
    return it == int_index_.end() ? -1 : it->second;
  }

  bool zeros_;
  bool using_strings_ = false;
  int64_t count_ = 0;
  std::unordered_map<int64_t, int64_t> int_index_;
  std::unordered_map<std::string, int64_t> string_index_;
};

const std::vector<DType> kTypes = {DType::String, DType::Int64, DType::Int32, DType::Float,
                                   DType::Double};

}  // namespace

GRAFT_CPU_KERNELS(ml_one_hot_encoder) {
  reg.add({ml::kMlDomain, "OneHotEncoder", 1, 1 << 30, kTypes, 0, make<OneHotEncoder>});
}

}  // namespace graft
