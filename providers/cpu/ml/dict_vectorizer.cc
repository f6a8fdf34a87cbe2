// DictVectorizer (ai.onnx.ml): a map to a [1, V] tensor laid out by the vocabulary; keys missing
// from the map give zeros (empty strings), keys missing from the vocabulary are ignored.
#include <unordered_map>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class DictVectorizer final : public Kernel {
 public:
  explicit DictVectorizer(const KernelInfo& info) {
    const std::vector<std::string> strings = info.attr_strings("string_vocabulary");
    const std::vector<int64_t> ints = info.attr_ints("int64_vocabulary");
    if (strings.empty() == ints.empty()) {
      info.fail("exactly one of string_vocabulary and int64_vocabulary must be given");
    }
    string_keys_ = !strings.empty();
    size_ = static_cast<int64_t>(string_keys_ ? strings.size() : ints.size());
    for (size_t i = 0; i < strings.size(); ++i)
      string_index_.emplace(strings[i], static_cast<int64_t>(i));
    for (size_t i = 0; i < ints.size(); ++i) int_index_.emplace(ints[i], static_cast<int64_t>(i));
  }

  void compute(KernelContext& ctx) override {
    const Value& in = ctx.input_value(0);
    if (in.kind() != Value::Kind::Map) ctx.fail("input X must be a map");
    const Tensor& keys = in.map_keys();
    const Tensor& values = in.map_values();
    const DType want = string_keys_ ? DType::String : DType::Int64;
    if (keys.dtype() != want) {
      ctx.fail(std::string("map keys must be ") + dtype_name(want) +
               " to match the vocabulary, got " + dtype_name(keys.dtype()));
    }
    Tensor& y = ctx.output_zeroed(0, values.dtype(), {1, size_});
    dispatch_by_size(values.dtype(), "DictVectorizer", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* v = values.data<T>();
      T* out = y.data<T>();
      for (int64_t i = 0; i < keys.size(); ++i) {
        const int64_t slot = find(keys, i);
        if (slot >= 0) out[slot] = v[i];
      }
    });
  }

 private:
  int64_t find(const Tensor& keys, int64_t i) const {
    if (string_keys_) {
      auto it = string_index_.find(keys.data<std::string>()[i]);
      return it == string_index_.end() ? -1 : it->second;
    }
    auto it = int_index_.find(keys.data<int64_t>()[i]);
    return it == int_index_.end() ? -1 : it->second;
  }

  bool string_keys_ = false;
  int64_t size_ = 0;
  std::unordered_map<std::string, int64_t> string_index_;
  std::unordered_map<int64_t, int64_t> int_index_;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_dict_vectorizer) {
  reg.add({ml::kMlDomain, "DictVectorizer", 1, 1 << 30, {}, 0, make<DictVectorizer>});
}

}  // namespace graft
