// CastMap (ai.onnx.ml): a map with int64 keys to a [1, K] tensor of its values in ascending key
// order, cast to float, int64 or string. SPARSE packing places each value at its key's index.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft {
namespace {

class CastMap final : public Kernel {
 public:
  explicit CastMap(const KernelInfo& info) : max_map_(info.attr_int("max_map", 1)) {
    const std::string cast_to = info.attr_string("cast_to", "TO_FLOAT");
    if (cast_to == "TO_FLOAT") {
      out_dtype_ = DType::Float;
    } else if (cast_to == "TO_INT64") {
      out_dtype_ = DType::Int64;
    } else if (cast_to == "TO_STRING") {
      out_dtype_ = DType::String;
    } else {
      info.fail("cast_to must be TO_FLOAT, TO_INT64 or TO_STRING, got '" + cast_to + "'");
    }
    const std::string form = info.attr_string("map_form", "DENSE");
    if (form != "DENSE" && form != "SPARSE")
      info.fail("map_form must be DENSE or SPARSE, got '" + form + "'");
    sparse_ = form == "SPARSE";
    if (sparse_ && max_map_ < 0) info.fail("max_map must not be negative");
  }

  void compute(KernelContext& ctx) override {
    const Value& in = ctx.input_value(0);
    if (in.kind() != Value::Kind::Map) ctx.fail("input X must be a map");
    const Tensor& keys = in.map_keys();
    const Tensor& values = in.map_values();
    if (keys.dtype() != DType::Int64)
      ctx.fail(std::string("map keys must be int64, got ") + dtype_name(keys.dtype()));
    const int64_t* k = keys.data<int64_t>();

    // Ascending keys; a repeated key keeps its last value, as a dict update would.
    std::vector<int64_t> order(static_cast<size_t>(keys.size()));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return k[a] < k[b]; });
    std::vector<int64_t> unique;
    for (size_t i = 0; i < order.size(); ++i) {
      if (i + 1 < order.size() && k[order[i]] == k[order[i + 1]]) continue;
      unique.push_back(order[i]);
    }

    const int64_t width = sparse_ ? max_map_ : static_cast<int64_t>(unique.size());
    Tensor& y = ctx.output_zeroed(0, out_dtype_, {1, width});
    auto slot = [&](size_t i) -> int64_t {
      if (!sparse_) return static_cast<int64_t>(i);
      const int64_t key = k[unique[i]];
      if (key < 0 || key >= max_map_) {
        ctx.fail("key " + std::to_string(key) +
                 " is outside [0, max_map=" + std::to_string(max_map_) + ")");
      }
      return key;
    };
    if (sparse_) fill_padding(y);
    for (size_t i = 0; i < unique.size(); ++i) write(ctx, values, unique[i], y, slot(i));
  }

 private:
  void fill_padding(Tensor& y) const {
    // onnxruntime pads string outputs with "0.f"; numbers are already zero (output_zeroed).
    if (out_dtype_ == DType::String)
      std::fill_n(y.data<std::string>(), y.size(), std::string("0.f"));
  }

  void write(const KernelContext& ctx, const Tensor& values, int64_t from, Tensor& y,
             int64_t to) const {
    if (values.dtype() == DType::String) {
      const std::string& s = values.data<std::string>()[from];
      try {
        if (out_dtype_ == DType::Float) {
          y.data<float>()[to] = std::stof(s);
        } else if (out_dtype_ == DType::Int64) {
          y.data<int64_t>()[to] = std::stoll(s);
        } else {
          y.data<std::string>()[to] = s;
        }
      } catch (const std::logic_error&) {
        ctx.fail("cannot convert map value '" + s + "' to " + dtype_name(out_dtype_));
      }
      return;
    }
    const auto v = static_cast<float>(values.scalar_as_double(from));
    if (out_dtype_ == DType::Float) {
      y.data<float>()[to] = v;
    } else if (out_dtype_ == DType::Int64) {
      if (!(std::abs(v) < 9.2e18f))
        ctx.fail("map value " + std::to_string(v) + " does not fit in int64");
      y.data<int64_t>()[to] = static_cast<int64_t>(v);
    } else {
      y.data<std::string>()[to] = std::to_string(v);
    }
  }

  int64_t max_map_;
  bool sparse_ = false;
  DType out_dtype_ = DType::Float;
};

}  // namespace

GRAFT_CPU_KERNELS(ml_cast_map) {
  reg.add({ml::kMlDomain, "CastMap", 1, 1 << 30, {}, 0, make<CastMap>});
}

}  // namespace graft
