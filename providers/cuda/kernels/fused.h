// com.graft FusedElementwise_<k>: a chain of elementwise ops fused by
// ir/transforms/fuse_elementwise.h, interpreted per output element. Each thread reads every input
// once (through its broadcast index) into registers, runs the steps on the accumulation type
// (float for the 16-bit floats, so a fused chain rounds once where the unfused one rounds after
// each op) and writes the output once. The ops are elementwise.h's.
#pragma once

#include <string>
#include <vector>

#include "ir/names.h"
#include "ir/transforms/fuse_elementwise.h"
#include "providers/cuda/kernels/elementwise.h"

namespace graft::cuda {

enum class FusedCode : int32_t {
  Relu,
  Neg,
  Abs,
  Exp,
  Log,
  Sqrt,
  Tanh,
  Sigmoid,
  Erf,
  Reciprocal,
  Floor,
  Ceil,
  Sin,
  Cos,
  Softplus,
  LeakyRelu,
  Elu,
  Gelu,
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Max,
  Min,
};

// One step: the op, its operands (an input's index, ir::kFusedPrevious or ir::kFusedNone) and
// its alpha.
struct FusedStep {
  FusedCode code;
  int32_t a, b;
  float alpha;
};

template <typename A>
GRAFT_HD A fused_apply(const FusedStep& s, A x, A y) {
  switch (s.code) {
    case FusedCode::Relu:
      return ReluOp{}(x);
    case FusedCode::Neg:
      return NegOp{}(x);
    case FusedCode::Abs:
      return AbsOp{}(x);
    case FusedCode::Exp:
      return ExpOp{}(x);
    case FusedCode::Log:
      return LogOp{}(x);
    case FusedCode::Sqrt:
      return SqrtOp{}(x);
    case FusedCode::Tanh:
      return TanhOp{}(x);
    case FusedCode::Sigmoid:
      return SigmoidOp{}(x);
    case FusedCode::Erf:
      return ErfOp{}(x);
    case FusedCode::Reciprocal:
      return ReciprocalOp{}(x);
    case FusedCode::Floor:
      return FloorOp{}(x);
    case FusedCode::Ceil:
      return CeilOp{}(x);
    case FusedCode::Sin:
      return SinOp{}(x);
    case FusedCode::Cos:
      return CosOp{}(x);
    case FusedCode::Softplus:
      return SoftplusOp{}(x);
    case FusedCode::LeakyRelu:
      return LeakyReluOp{s.alpha}(x);
    case FusedCode::Elu:
      return EluOp{s.alpha}(x);
    case FusedCode::Gelu:
      return GeluOp{s.alpha != 0.0f}(x);
    case FusedCode::Add:
      return AddOp{}(x, y);
    case FusedCode::Sub:
      return SubOp{}(x, y);
    case FusedCode::Mul:
      return MulOp{}(x, y);
    case FusedCode::Div:
      return DivOp{}(x, y);
    case FusedCode::Pow:
      return math_pow(x, y);
    case FusedCode::Max:
      return MaxOp{}(x, y);
    case FusedCode::Min:
      return MinOp{}(x, y);
  }
  return x;
}

template <typename T>
struct FusedFn {
  const T* in[ir::kMaxFusedInputs];
  StridedIndex index[ir::kMaxFusedInputs];
  FusedStep steps[ir::kMaxFusedSteps];
  int32_t num_inputs;
  int32_t num_steps;
  T* y;

  // v[j] with a constant-bound loop, so v stays in registers (no indexed local memory).
  template <typename A>
  GRAFT_HD static A pick(const A (&v)[ir::kMaxFusedInputs], int32_t j) {
    A r = v[0];
    for (int k = 1; k < ir::kMaxFusedInputs; ++k) {
      if (j == k) r = v[k];
    }
    return r;
  }

  GRAFT_HD void operator()(int64_t i) const {
    using A = Acc<T>;
    A v[ir::kMaxFusedInputs];
    for (int k = 0; k < ir::kMaxFusedInputs; ++k)
      v[k] = k < num_inputs ? widen(in[k][index[k](i)]) : A(0);
    A acc = A(0);
    for (int32_t s = 0; s < num_steps; ++s) {
      const FusedStep& step = steps[s];
      const A first = step.a == ir::kFusedPrevious ? acc : pick(v, step.a);
      A second = A(0);
      if (step.b == ir::kFusedPrevious) {
        second = acc;
      } else if (step.b != ir::kFusedNone) {
        second = pick(v, step.b);
      }
      acc = fused_apply(step, first, second);
    }
    y[i] = narrow<T>(acc);
  }
};

// The op code of a step named `op`; false for an op the kernel lacks.
inline bool fused_code(const std::string& op, FusedCode* code) {
  static const std::pair<const char*, FusedCode> kCodes[] = {{"Relu", FusedCode::Relu},
                                                             {"Neg", FusedCode::Neg},
                                                             {"Abs", FusedCode::Abs},
                                                             {"Exp", FusedCode::Exp},
                                                             {"Log", FusedCode::Log},
                                                             {"Sqrt", FusedCode::Sqrt},
                                                             {"Tanh", FusedCode::Tanh},
                                                             {"Sigmoid", FusedCode::Sigmoid},
                                                             {"Erf", FusedCode::Erf},
                                                             {"Reciprocal", FusedCode::Reciprocal},
                                                             {"Floor", FusedCode::Floor},
                                                             {"Ceil", FusedCode::Ceil},
                                                             {"Sin", FusedCode::Sin},
                                                             {"Cos", FusedCode::Cos},
                                                             {"Softplus", FusedCode::Softplus},
                                                             {"LeakyRelu", FusedCode::LeakyRelu},
                                                             {"Elu", FusedCode::Elu},
                                                             {"Gelu", FusedCode::Gelu},
                                                             {"Add", FusedCode::Add},
                                                             {"Sub", FusedCode::Sub},
                                                             {"Mul", FusedCode::Mul},
                                                             {"Div", FusedCode::Div},
                                                             {"Pow", FusedCode::Pow},
                                                             {"Max", FusedCode::Max},
                                                             {"Min", FusedCode::Min}};
  for (const auto& [name, c] : kCodes) {
    if (op == name) {
      *code = c;
      return true;
    }
  }
  return false;
}

template <class B>
class FusedKernel final : public DeviceKernel<B> {
 public:
  explicit FusedKernel(const KernelInfo& info) : DeviceKernel<B>(info) {
    const std::vector<std::string> ops = info.attr_strings("ops");
    const std::vector<int64_t> operands = info.attr_ints("operands");
    const std::vector<float> alphas = info.attr_floats("alphas");
    const int inputs = info.num_inputs();
    if (ops.empty() || ops.size() > static_cast<size_t>(ir::kMaxFusedSteps))
      info.fail("has " + std::to_string(ops.size()) + " steps, expected 1 to " +
                std::to_string(ir::kMaxFusedSteps));
    if (inputs > ir::kMaxFusedInputs)
      info.fail("has " + std::to_string(inputs) + " inputs, at most " +
                std::to_string(ir::kMaxFusedInputs) + " fit");
    if (operands.size() != 2 * ops.size() || alphas.size() != ops.size())
      info.fail("needs two operands and one alpha per step");
    for (size_t s = 0; s < ops.size(); ++s) {
      FusedStep& step = steps_[s];
      if (!fused_code(ops[s], &step.code)) info.fail("cannot fuse op " + ops[s]);
      step.a = static_cast<int32_t>(operands[2 * s]);
      step.b = static_cast<int32_t>(operands[2 * s + 1]);
      step.alpha = alphas[s];
      const bool unary = ir::fused_step_arity(ops[s]) == 1;
      auto valid = [&](int32_t j, bool may_be_none) {
        return (j >= 0 && j < inputs) || (j == ir::kFusedPrevious && s > 0) ||
               (j == ir::kFusedNone && may_be_none);
      };
      if (!valid(step.a, false) || !valid(step.b, unary) || (unary != (step.b == ir::kFusedNone)))
        info.fail("step " + std::to_string(s) + " (" + ops[s] + ") has operands " +
                  std::to_string(step.a) + ", " + std::to_string(step.b));
    }
    num_steps_ = static_cast<int32_t>(ops.size());
  }

  void compute(KernelContext& ctx) override {
    std::vector<Shape> shapes;
    const DType dtype = ctx.input(0).dtype();
    for (int j = 0; j < ctx.num_inputs(); ++j) {
      const Tensor& x = ctx.input(j);
      if (x.dtype() != dtype)
        ctx.fail("input " + std::to_string(j) + " is " + dtype_name(x.dtype()) + ", input 0 " +
                 dtype_name(dtype));
      shapes.push_back(x.shape());
    }
    const Shape shape = broadcast_shapes(shapes, ctx.describe());
    Tensor& y = ctx.output(0, dtype, shape);
    dispatch_device_float(dtype, ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      FusedFn<T> f{};
      f.num_inputs = ctx.num_inputs();
      for (int j = 0; j < ctx.num_inputs(); ++j) {
        f.in[j] = ctx.input(j).template data<T>();
        f.index[j] = broadcast_index(ctx.input(j).shape(), shape, ctx.describe());
      }
      for (int32_t s = 0; s < num_steps_; ++s) f.steps[s] = steps_[s];
      f.num_steps = num_steps_;
      f.y = y.data<T>();
      this->backend().for_each(y.size(), f);
    });
  }

 private:
  FusedStep steps_[ir::kMaxFusedSteps] = {};
  int32_t num_steps_ = 0;
};

template <class B>
void register_fused(KernelRegistry& reg) {
  for (int k = 0; k < ir::kMaxFusedBodies; ++k) {
    reg.add({names::kDomain, ir::fused_elementwise_op(k), 1, 1 << 30, kDeviceFloatTypes, 0,
             make<FusedKernel<B>>});
  }
}

}  // namespace graft::cuda
