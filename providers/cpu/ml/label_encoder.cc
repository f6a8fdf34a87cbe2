// LabelEncoder (ai.onnx.ml). Opset 1 maps strings to their index in classes_strings and
// integers back to strings; opsets 2 and 4 map each key of keys_* (or keys_tensor) to the value
// at the same position of values_* (or values_tensor), unknown inputs to the default. Float keys
// compare by value, with NaN matching NaN; a repeated key keeps its last value.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

Tensor strings_tensor(const std::vector<std::string>& v) {
  Tensor t(DType::String, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<std::string>());
  return t;
}

template <typename T, typename S>
Tensor numbers_tensor(DType dtype, const std::vector<S>& v) {
  Tensor t(dtype, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}

Tensor scalar_of(DType dtype, double number, const std::string& text) {
  Tensor t(dtype, {1});
  if (dtype == DType::String) {
    t.data<std::string>()[0] = text;
  } else {
    dispatch_number(dtype, "LabelEncoder", [&](auto tag) {
      using T = typename decltype(tag)::type;
      t.data<T>()[0] = static_cast<T>(number);
    });
  }
  return t;
}

class LabelEncoder final : public Kernel {
 public:
  explicit LabelEncoder(const KernelInfo& info) {
    if (info.since_version() < 2) {
      init_v1(info);
    } else {
      init_keys(info);
      init_values(info);
    }
    if (keys_.size() != values_.size()) {
      info.fail("keys and values differ in length (" + std::to_string(keys_.size()) + " and " +
                std::to_string(values_.size()) + ")");
    }
    index_keys(info);
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (reverse_keys_.defined() && x.dtype() == DType::Int64) {
      compute_v1_reverse(ctx, x);
      return;
    }
    if (x.dtype() != keys_.dtype()) {
      ctx.fail(std::string("X is ") + dtype_name(x.dtype()) + " but the keys are " +
               dtype_name(keys_.dtype()));
    }
    std::vector<int64_t> slots(static_cast<size_t>(x.size()));
    for (int64_t i = 0; i < x.size(); ++i) slots[static_cast<size_t>(i)] = find(x, i);
    Tensor& y = ctx.output(0, values_.dtype(), x.shape());
    dispatch_by_size(values_.dtype(), "LabelEncoder", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* values = values_.data<T>();
      const T fallback = default_.data<T>()[0];
      T* out = y.data<T>();
      for (size_t i = 0; i < slots.size(); ++i) out[i] = slots[i] < 0 ? fallback : values[slots[i]];
    });
  }

 private:
  void compute_v1_reverse(KernelContext& ctx, const Tensor& x) const {
    Tensor& y = ctx.output(0, DType::String, x.shape());
    const int64_t* in = x.data<int64_t>();
    const std::string* classes = reverse_keys_.data<std::string>();
    std::string* out = y.data<std::string>();
    for (int64_t i = 0; i < x.size(); ++i) {
      const bool known = in[i] >= 0 && in[i] < reverse_keys_.size();
      out[i] = known ? classes[in[i]] : reverse_default_.data<std::string>()[0];
    }
  }

  // Opset 1: classes_strings alone. A string maps to its first position in the list and an
  // int64 to the string at that position; which way is decided by X's type at run time.
  void init_v1(const KernelInfo& info) {
    const std::vector<std::string> classes = info.attr_strings("classes_strings");
    std::vector<int64_t> positions(classes.size());
    for (size_t i = 0; i < classes.size(); ++i) positions[i] = static_cast<int64_t>(i);
    keys_ = strings_tensor(classes);
    values_ = numbers_tensor<int64_t>(DType::Int64, positions);
    default_ = scalar_of(DType::Int64, static_cast<double>(info.attr_int("default_int64", -1)), "");
    reverse_keys_ = keys_;
    reverse_default_ = scalar_of(DType::String, 0, info.attr_string("default_string", "_Unused"));
    first_wins_ = true;
  }

  void init_keys(const KernelInfo& info) {
    int given = 0;
    if (info.has_attr("keys_strings")) {
      keys_ = strings_tensor(info.attr_strings("keys_strings"));
      ++given;
    }
    if (info.has_attr("keys_int64s")) {
      keys_ = numbers_tensor<int64_t>(DType::Int64, info.attr_ints("keys_int64s"));
      ++given;
    }
    if (info.has_attr("keys_floats")) {
      keys_ = numbers_tensor<float>(DType::Float, info.attr_floats("keys_floats"));
      ++given;
    }
    if (info.since_version() >= 4 && info.has_attr("keys_tensor")) {
      const Tensor k = info.attr_tensor("keys_tensor");
      keys_ = k.reshaped({k.size()});
      ++given;
    }
    if (given != 1) info.fail("exactly one keys_* attribute must be given");
  }

  void init_values(const KernelInfo& info) {
    int given = 0;
    if (info.has_attr("values_strings")) {
      values_ = strings_tensor(info.attr_strings("values_strings"));
      default_ = scalar_of(DType::String, 0, info.attr_string("default_string", "_Unused"));
      ++given;
    }
    if (info.has_attr("values_int64s")) {
      values_ = numbers_tensor<int64_t>(DType::Int64, info.attr_ints("values_int64s"));
      default_ =
          scalar_of(DType::Int64, static_cast<double>(info.attr_int("default_int64", -1)), "");
      ++given;
    }
    if (info.has_attr("values_floats")) {
      values_ = numbers_tensor<float>(DType::Float, info.attr_floats("values_floats"));
      default_ = scalar_of(DType::Float, info.attr_float("default_float", -0.0f), "");
      ++given;
    }
    if (info.since_version() >= 4 && info.has_attr("values_tensor")) {
      const Tensor v = info.attr_tensor("values_tensor");
      values_ = v.reshaped({v.size()});
      const DType d = v.dtype();
      default_ = scalar_of(d, dtype_is_float(d) ? -0.0 : -1.0, "_Unused");
      ++given;
    }
    if (given != 1) info.fail("exactly one values_* attribute must be given");
    if (info.since_version() >= 4 && info.has_attr("default_tensor")) {
      const Tensor d = info.attr_tensor("default_tensor");
      if (d.dtype() != values_.dtype() || d.size() != 1) {
        info.fail(std::string("default_tensor must hold one ") + dtype_name(values_.dtype()) +
                  " value");
      }
      default_ = d.reshaped({1});
    }
  }

  // Builds the lookup table for the keys' type. Integers and floats are indexed by value.
  void index_keys(const KernelInfo& info) {
    const DType d = keys_.dtype();
    for (int64_t i = 0; i < keys_.size(); ++i) {
      if (d == DType::String) {
        insert(string_index_, keys_.data<std::string>()[i], i);
      } else if (dtype_is_integer(d)) {
        insert(int_index_, keys_.scalar_as_int(i), i);
      } else if (dtype_is_float(d)) {
        const double v = keys_.scalar_as_double(i);
        if (std::isnan(v)) {
          if (nan_slot_ < 0 || !first_wins_) nan_slot_ = i;
        } else {
          insert(float_index_, v, i);
        }
      } else {
        info.fail(std::string("unsupported key type ") + dtype_name(d));
      }
    }
  }

  template <typename Map, typename K>
  void insert(Map& map, const K& key, int64_t slot) {
    if (first_wins_) {
      map.emplace(key, slot);
    } else {
      map[key] = slot;
    }
  }

  int64_t find(const Tensor& x, int64_t i) const {
    const DType d = x.dtype();
    if (d == DType::String) {
      auto it = string_index_.find(x.data<std::string>()[i]);
      return it == string_index_.end() ? -1 : it->second;
    }
    if (dtype_is_integer(d)) {
      auto it = int_index_.find(x.scalar_as_int(i));
      return it == int_index_.end() ? -1 : it->second;
    }
    const double v = x.scalar_as_double(i);
    if (std::isnan(v)) return nan_slot_;
    auto it = float_index_.find(v);
    return it == float_index_.end() ? -1 : it->second;
  }

  Tensor keys_;
  Tensor values_;
  Tensor default_;
  // Opset 1's int64 -> string direction.
  Tensor reverse_keys_;
  Tensor reverse_default_;
  bool first_wins_ = false;
  int64_t nan_slot_ = -1;
  std::unordered_map<std::string, int64_t> string_index_;
  std::unordered_map<int64_t, int64_t> int_index_;
  std::unordered_map<double, int64_t> float_index_;
};

const std::vector<DType> kV1Types = {DType::String, DType::Int64};
const std::vector<DType> kV2Types = {DType::String, DType::Int64, DType::Float};
const std::vector<DType> kV4Types = {DType::String, DType::Int64, DType::Float,
                                     DType::Int32,  DType::Int16, DType::Double};

}  // namespace

GRAFT_CPU_KERNELS(ml_label_encoder) {
  reg.add({ml::kMlDomain, "LabelEncoder", 1, 1, kV1Types, 0, make<LabelEncoder>});
  reg.add({ml::kMlDomain, "LabelEncoder", 2, 3, kV2Types, 0, make<LabelEncoder>});
  reg.add({ml::kMlDomain, "LabelEncoder", 4, 1 << 30, kV4Types, 0, make<LabelEncoder>});
}

}  // namespace graft
