// Optional ops: wrap a value in an optional, test it, and unwrap it.
#include "exec/kernel.h"
#include "ir/model.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

// What an Optional holds: from the input when given, else from the `type` attribute.
class Optional final : public Kernel {
 public:
  explicit Optional(const KernelInfo& info) {
    const ir::Attribute* attr = info.node().find_attr("type");
    if (attr == nullptr || !attr->proto->has_tp()) return;
    const onnx::TypeProto& type = attr->proto->tp();
    if (type.has_tensor_type()) {
      dtype_ = static_cast<DType>(type.tensor_type().elem_type());
    } else if (type.has_sequence_type()) {
      kind_ = Value::Kind::Sequence;
      const onnx::TypeProto& elem = type.sequence_type().elem_type();
      if (elem.has_tensor_type()) dtype_ = static_cast<DType>(elem.tensor_type().elem_type());
    } else {
      info.fail("type must be a tensor or a sequence of tensors");
    }
  }

  void compute(KernelContext& ctx) override {
    if (!ctx.has_input(0)) {
      ctx.set_output(0, Value::optional(Value(), kind_, dtype_));
      return;
    }
    const Value& v = ctx.input_value(0);
    if (v.kind() == Value::Kind::Tensor) {
      ctx.set_output(0, Value::optional(v, Value::Kind::Tensor, v.tensor().dtype()));
    } else if (v.kind() == Value::Kind::Sequence) {
      ctx.set_output(0, Value::optional(v, Value::Kind::Sequence, v.elem_dtype()));
    } else {
      ctx.fail("input must be a tensor or a sequence");
    }
  }

 private:
  Value::Kind kind_ = Value::Kind::Tensor;
  DType dtype_ = DType::Undefined;
};

// True for a non-empty optional; from opset 18 also true for a plain tensor or sequence and
// false for an omitted input.
class OptionalHasElement final : public Kernel {
 public:
  explicit OptionalHasElement(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Value& v = ctx.input_value(0);
    bool has = false;
    if (v.kind() == Value::Kind::Optional) {
      has = v.has_element();
    } else {
      has = !v.is_none();
    }
    ctx.output(0, DType::Bool, {}).data<bool>()[0] = has;
  }
};

// The optional's element; from opset 18 a plain tensor or sequence passes through.
class OptionalGetElement final : public Kernel {
 public:
  explicit OptionalGetElement(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Value& v = ctx.input_value(0);
    if (v.kind() == Value::Kind::Optional) {
      if (!v.has_element()) ctx.fail("the optional input is empty");
      ctx.set_output(0, v.elements()[0]);
    } else if (v.is_none()) {
      ctx.fail("the input is missing");
    } else {
      ctx.set_output(0, v);
    }
  }
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_optional) {
  reg.add({"", "Optional", 15, 1 << 30, {}, 0, make<Optional>});
  reg.add({"", "OptionalHasElement", 15, 1 << 30, {}, 0, make<OptionalHasElement>});
  reg.add({"", "OptionalGetElement", 15, 1 << 30, {}, 0, make<OptionalGetElement>});
}

}  // namespace graft
