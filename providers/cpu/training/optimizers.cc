// ai.onnx.preview.training optimizers: Adagrad, Adam and Momentum (standard and Nesterov).
// Inputs are R (learning rate), T (update count), then n tensors X, their n gradients G and
// their state tensors, each group of n in order; outputs are the n new X then the new states.
// Every update is elementwise, computed in double and stored in the tensor's type.
#include <cmath>
#include <string>

#include "exec/kernel.h"

namespace graft {
namespace {

// Adagrad: one state H, the accumulated squared gradient.
struct AdagradRule {
  static constexpr int kStates = 1;
  explicit AdagradRule(const KernelInfo& info)
      : decay_factor_(info.attr_float("decay_factor", 0.0f)),
        epsilon_(info.attr_float("epsilon", 1e-6f)),
        norm_coefficient_(info.attr_float("norm_coefficient", 0.0f)) {}

  void start(double r, int64_t t) { rate_ = r / (1.0 + static_cast<double>(t) * decay_factor_); }

  double apply(double x, double g, double* s) const {
    const double g_reg = norm_coefficient_ * x + g;
    s[0] += g_reg * g_reg;
    return x - rate_ * g_reg / (std::sqrt(s[0]) + epsilon_);
  }

  double decay_factor_, epsilon_, norm_coefficient_;
  double rate_ = 0;
};

// Adam: states V (first moment) and H (second moment); bias correction once T > 0.
struct AdamRule {
  static constexpr int kStates = 2;
  explicit AdamRule(const KernelInfo& info)
      : alpha_(info.attr_float("alpha", 0.9f)),
        beta_(info.attr_float("beta", 0.999f)),
        epsilon_(info.attr_float("epsilon", 1e-6f)),
        norm_coefficient_(info.attr_float("norm_coefficient", 0.0f)),
        norm_coefficient_post_(info.attr_float("norm_coefficient_post", 0.0f)) {}

  void start(double r, int64_t t) {
    rate_ = r;
    if (t > 0) {
      const double td = static_cast<double>(t);
      rate_ = r * std::sqrt(1.0 - std::pow(beta_, td)) / (1.0 - std::pow(alpha_, td));
    }
  }

  double apply(double x, double g, double* s) const {
    const double g_reg = norm_coefficient_ * x + g;
    s[0] = alpha_ * s[0] + (1.0 - alpha_) * g_reg;
    s[1] = beta_ * s[1] + (1.0 - beta_) * (g_reg * g_reg);
    const double x_new = x - rate_ * (s[0] / (std::sqrt(s[1]) + epsilon_));
    return (1.0 - norm_coefficient_post_) * x_new;
  }

  double alpha_, beta_, epsilon_, norm_coefficient_, norm_coefficient_post_;
  double rate_ = 0;
};

// Momentum: one state V; the gradient's coefficient is 1 on the first update (T == 0).
struct MomentumRule {
  static constexpr int kStates = 1;
  explicit MomentumRule(const KernelInfo& info)
      : alpha_(info.attr_float("alpha", 0.0f)),
        beta_(info.attr_float("beta", 0.0f)),
        norm_coefficient_(info.attr_float("norm_coefficient", 0.0f)) {
    for (const char* name : {"alpha", "beta", "norm_coefficient", "mode"}) {
      if (!info.has_attr(name)) info.fail(std::string("attribute '") + name + "' is required");
    }
    const std::string mode = info.attr_string("mode", "standard");
    if (mode != "standard" && mode != "nesterov")
      info.fail("mode '" + mode + "' is not 'standard' or 'nesterov'");
    nesterov_ = mode == "nesterov";
  }

  void start(double r, int64_t t) {
    rate_ = r;
    beta_adjusted_ = t > 0 ? beta_ : 1.0;
  }

  double apply(double x, double g, double* s) const {
    const double g_reg = norm_coefficient_ * x + g;
    s[0] = alpha_ * s[0] + beta_adjusted_ * g_reg;
    return nesterov_ ? x - rate_ * (g_reg + alpha_ * s[0]) : x - rate_ * s[0];
  }

  double alpha_, beta_, norm_coefficient_;
  bool nesterov_ = false;
  double rate_ = 0, beta_adjusted_ = 0;
};

template <typename Rule>
class Optimizer : public Kernel {
 public:
  static constexpr int kGroups = 2 + Rule::kStates;  // X, G and the states

  explicit Optimizer(const KernelInfo& info) : rule_(info) {
    const int tensors = info.num_inputs() - 2;
    if (tensors <= 0 || tensors % kGroups != 0) {
      info.fail("expects R, T and " + std::to_string(kGroups) +
                " groups of equally many tensors, got " + std::to_string(info.num_inputs()) +
                " inputs");
    }
    count_ = tensors / kGroups;
    if (info.num_outputs() > count_ * (1 + Rule::kStates)) {
      info.fail("has " + std::to_string(info.num_outputs()) + " outputs, expected at most " +
                std::to_string(count_ * (1 + Rule::kStates)));
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& r = ctx.input(0);
    const Tensor& t = ctx.input(1);
    if (r.size() != 1) ctx.fail("R must be a scalar, got shape " + shape_to_string(r.shape()));
    if (t.size() != 1) ctx.fail("T must be a scalar, got shape " + shape_to_string(t.shape()));
    if (r.dtype() != DType::Float && r.dtype() != DType::Double)
      ctx.fail("R must be float or double");
    if (t.dtype() != DType::Int64) ctx.fail("T must be int64");
    Rule rule = rule_;  // per run, so concurrent runs do not share the step's scalars
    rule.start(r.scalar_as_double(), t.scalar_as_int());
    for (int i = 0; i < count_; ++i) update(ctx, rule, i);
  }

 private:
  void update(KernelContext& ctx, const Rule& rule, int i) {
    const Tensor& x = ctx.input(2 + i);
    const Tensor* parts[kGroups];
    for (int k = 0; k < kGroups; ++k) {
      parts[k] = &ctx.input(2 + k * count_ + i);
      if (parts[k]->dtype() != x.dtype() || parts[k]->shape() != x.shape()) {
        ctx.fail("input " + std::to_string(2 + k * count_ + i) + " " +
                 shape_to_string(parts[k]->shape()) + " does not match X " +
                 shape_to_string(x.shape()) + " in shape or element type");
      }
    }
    // Trailing outputs the node does not list are still computed, into local scratch.
    Tensor scratch[1 + Rule::kStates];
    Tensor* outs[1 + Rule::kStates];
    for (int k = 0; k <= Rule::kStates; ++k) {
      const int index = k * count_ + i;
      if (index < ctx.num_outputs()) {
        outs[k] = &ctx.output(index, x.dtype(), x.shape());
      } else {
        scratch[k] = Tensor(x.dtype(), x.shape());
        outs[k] = &scratch[k];
      }
    }
    const int64_t n = x.size();
    auto run = [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* in[kGroups];
      T* out[1 + Rule::kStates];
      for (int k = 0; k < kGroups; ++k) in[k] = parts[k]->template data<T>();
      for (int k = 0; k <= Rule::kStates; ++k) out[k] = outs[k]->template data<T>();
#pragma omp parallel for if (n > (1 << 16))
      for (int64_t j = 0; j < n; ++j) {
        double s[Rule::kStates];
        for (int k = 0; k < Rule::kStates; ++k) s[k] = static_cast<double>(in[2 + k][j]);
        out[0][j] = static_cast<T>(
            rule.apply(static_cast<double>(in[0][j]), static_cast<double>(in[1][j]), s));
        for (int k = 0; k < Rule::kStates; ++k) out[1 + k][j] = static_cast<T>(s[k]);
      }
    };
    if (x.dtype() == DType::Float) {
      run(TypeTag<float>{});
    } else if (x.dtype() == DType::Double) {
      run(TypeTag<double>{});
    } else {
      ctx.fail(std::string("X has unsupported element type ") + dtype_name(x.dtype()));
    }
  }

  Rule rule_;
  int count_ = 0;
};

}  // namespace

GRAFT_CPU_KERNELS(preview_training_optimizers) {
  const std::vector<DType> types = {DType::Float, DType::Double};
  const char* domain = "ai.onnx.preview.training";
  reg.add({domain, "Adagrad", 1, 1 << 30, types, 2, make<Optimizer<AdagradRule>>});
  reg.add({domain, "Adam", 1, 1 << 30, types, 2, make<Optimizer<AdamRule>>});
  reg.add({domain, "Momentum", 1, 1 << 30, types, 2, make<Optimizer<MomentumRule>>});
}

}  // namespace graft
