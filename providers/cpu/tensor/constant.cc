// Constant, ConstantOfShape and EyeLike: tensors made from attributes and shapes.
#include "exec/kernel.h"
#include "exec/movement_shapes.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// The value is one of the attributes value (a tensor), value_float(s), value_int(s) or
// value_string(s) (the scalar and list forms since opset 12); built once.
class Constant final : public Kernel {
 public:
  explicit Constant(const KernelInfo& info) {
    if (info.has_attr("value")) {
      value_ = info.attr_tensor("value");
    } else if (info.has_attr("value_float")) {
      value_ = Tensor(DType::Float, {});
      value_.data<float>()[0] = info.attr_float("value_float", 0.0f);
    } else if (info.has_attr("value_floats")) {
      const std::vector<float> v = info.attr_floats("value_floats");
      value_ = Tensor(DType::Float, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), value_.data<float>());
    } else if (info.has_attr("value_int")) {
      value_ = Tensor(DType::Int64, {});
      value_.data<int64_t>()[0] = info.attr_int("value_int", 0);
    } else if (info.has_attr("value_ints")) {
      const std::vector<int64_t> v = info.attr_ints("value_ints");
      value_ = Tensor(DType::Int64, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), value_.data<int64_t>());
    } else if (info.has_attr("value_string")) {
      value_ = Tensor(DType::String, {});
      value_.data<std::string>()[0] = info.attr_string("value_string", "");
    } else if (info.has_attr("value_strings")) {
      const std::vector<std::string> v = info.attr_strings("value_strings");
      value_ = Tensor(DType::String, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), value_.data<std::string>());
    } else if (info.has_attr("sparse_value")) {
      // graft's kernels compute on dense tensors: the sparse value becomes its dense form.
      value_ = info.attr_sparse_tensor("sparse_value");
    } else {
      info.fail("no value attribute");
    }
  }

  void compute(KernelContext& ctx) override { ctx.set_output(0, value_); }

 private:
  Tensor value_;
};

class ConstantOfShape final : public Kernel {
 public:
  explicit ConstantOfShape(const KernelInfo& info) {
    if (info.has_attr("value")) {
      value_ = info.attr_tensor("value");
      if (value_.size() != 1) info.fail("value must hold exactly one element");
    } else {
      value_ = Tensor(DType::Float, {1});
    }
  }

  void compute(KernelContext& ctx) override {
    Tensor& y = ctx.output(0, value_.dtype(), shape_from_input(ctx, ctx.input(0)));
    tensor_ops::dispatch_copyable(value_.dtype(), "ConstantOfShape", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T v = value_.data<T>()[0];
      std::fill_n(y.data<T>(), y.size(), v);
    });
  }

 private:
  Tensor value_;
};

// Ones on the k-th diagonal of a 2-D tensor shaped like the input, of dtype `dtype` (the
// input's by default).
class EyeLike final : public Kernel {
 public:
  explicit EyeLike(const KernelInfo& info)
      : dtype_(static_cast<DType>(info.attr_int("dtype", 0))), k_(info.attr_int("k", 0)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 2) ctx.fail("input must be 2-D, got " + shape_to_string(x.shape()));
    const DType dtype = dtype_ == DType::Undefined ? x.dtype() : dtype_;
    Tensor& y = ctx.output_zeroed(0, dtype, x.shape());
    const int64_t rows = x.dim(0), cols = x.dim(1);
    dispatch_numeric(dtype, "EyeLike", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* out = y.data<T>();
      for (int64_t i = std::max<int64_t>(0, -k_); i < rows && i + k_ < cols; ++i) {
        out[i * cols + i + k_] = static_cast<T>(1);
      }
    });
  }

 private:
  DType dtype_;
  int64_t k_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_constant) {
  reg.add({"", "Constant", 1, 1 << 30, {}, 0, make<Constant>});
  reg.add({"", "ConstantOfShape", 9, 1 << 30, {}, 0, make<ConstantOfShape>});
  reg.add({"", "EyeLike", 9, 1 << 30, {}, 0, make<EyeLike>, {}, {0}});
}

}  // namespace graft
