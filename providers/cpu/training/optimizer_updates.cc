// com.graft's fused optimizer updates (optim/update_ops.h): SGDUpdate, AdamUpdate, AdagradUpdate,
// RMSpropUpdate and LAMBUpdate. One node updates every tensor: the elements are cut into chunks
// that OpenMP threads share, and each new tensor may be written into the buffer of the tensor it
// replaces (InPlaceKernel). Each tensor is computed in its own type with the same operations, in
// the same order, as the op's function body, so the two agree to rounding.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "exec/plan.h"
#include "exec/update_layout.h"
#include "ir/names.h"

namespace graft {
namespace {

constexpr int64_t kChunk = 1 << 14;
constexpr int kMaxSlots = 3;

// One chunk of one tensor's update. `x_out` and `s_out` may alias `x` and `s` (in place): every
// element is read before it is written, at the same index, so the loops carry no dependence
// (hence `ivdep`, which spares the vectorizer its aliasing checks).
template <typename T>
struct Chunk {
  const T* x;
  const T* g;
  T* x_out;
  std::array<const T*, kMaxSlots> s;
  std::array<T*, kMaxSlots> s_out;
  int64_t n;
  bool clip;
  T coef;   // the clipping factor of every gradient, when clip
  T trust;  // LAMB's trust ratio, in its second pass

  T grad(int64_t k) const { return clip ? g[k] * coef : g[k]; }
};

// What every rule reads: the learning rate and the step number t (1 on the first update).
using Step = UpdateStep;

float one_minus(float v) { return 1.0f - v; }
float correction(float beta, float t) {
  return 1.0f - static_cast<float>(std::pow(static_cast<double>(beta), static_cast<double>(t)));
}

struct SGDRule {
  static constexpr bool kTwoPass = false;
  explicit SGDRule(const KernelInfo& info)
      : momentum_(info.attr_float("momentum", 0.0f)),
        damp_(one_minus(info.attr_float("dampening", 0.0f))),
        wd_(info.attr_float("weight_decay", 0.0f)),
        nesterov_(info.attr_int("nesterov", 0) != 0) {}
  void check_slots(const KernelInfo& info, int slots) {
    if (slots > 1)
      info.fail("takes at most one state slot (momentum), got " + std::to_string(slots));
    buffer_ = slots == 1;
  }
  template <typename T>
  void apply(const Step& s, const Chunk<T>& c) const {
    // Each variant its own loop, so the vectorizer sees no conditional stores or loads.
    if (!buffer_) return run<false, false, false>(s, c);
    const bool first = s.step == 0;
    if (nesterov_) return first ? run<true, true, true>(s, c) : run<true, false, true>(s, c);
    return first ? run<true, true, false>(s, c) : run<true, false, false>(s, c);
  }
  template <bool kBuffer, bool kFirst, bool kNesterov, typename T>
  void run(const Step& s, const Chunk<T>& c) const {
    const T lr = T(s.lr), wd = T(wd_), mom = T(momentum_), damp = T(damp_);
#pragma GCC ivdep
    for (int64_t k = 0; k < c.n; ++k) {
      T g = c.grad(k) + c.x[k] * wd;
      if constexpr (kBuffer) {
        // torch: buf = g on the first update, then momentum * buf + (1 - dampening) * g.
        T buf = g;
        if constexpr (!kFirst) buf = c.s[0][k] * mom + g * damp;
        c.s_out[0][k] = buf;
        g = kNesterov ? g + buf * mom : buf;
      }
      c.x_out[k] = c.x[k] - lr * g;
    }
  }
  float momentum_, damp_, wd_;
  bool nesterov_;
  bool buffer_ = false;
};

struct AdamRule {
  static constexpr bool kTwoPass = false;
  explicit AdamRule(const KernelInfo& info)
      : b1_(info.attr_float("beta1", 0.9f)),
        b2_(info.attr_float("beta2", 0.999f)),
        eps_(info.attr_float("epsilon", 1e-8f)),
        wd_(info.attr_float("weight_decay", 0.0f)),
        decoupled_(info.attr_int("decoupled_weight_decay", 0) != 0) {}
  void check_slots(const KernelInfo& info, int slots) {
    if (slots != 2) info.fail("takes two state slots (m, v), got " + std::to_string(slots));
  }
  template <typename T>
  void apply(const Step& s, const Chunk<T>& c) const {
    const T lr = T(s.lr), wd = T(wd_), b1 = T(b1_), b2 = T(b2_), eps = T(eps_);
    const T rest1 = T(one_minus(b1_)), rest2 = T(one_minus(b2_));
    // p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), torch's arrangement; AdamW
    // first scales p by 1 - lr * weight_decay.
    const T step_size = T(s.lr / correction(b1_, s.t));
    const T root = T(std::sqrt(correction(b2_, s.t)));
    const T shrink = T(1) - lr * wd;
#pragma GCC ivdep
    for (int64_t k = 0; k < c.n; ++k) {
      const T x = c.x[k];
      T g = c.grad(k);
      if (!decoupled_) g = g + x * wd;
      const T m = c.s[0][k] * b1 + g * rest1;
      const T v = c.s[1][k] * b2 + (g * g) * rest2;
      c.s_out[0][k] = m;
      c.s_out[1][k] = v;
      const T base = decoupled_ ? x * shrink : x;
      c.x_out[k] = base - step_size * (m / (std::sqrt(v) / root + eps));
    }
  }
  float b1_, b2_, eps_, wd_;
  bool decoupled_;
};

struct AdagradRule {
  static constexpr bool kTwoPass = false;
  explicit AdagradRule(const KernelInfo& info)
      : lr_decay_(info.attr_float("lr_decay", 0.0f)),
        eps_(info.attr_float("epsilon", 1e-10f)),
        wd_(info.attr_float("weight_decay", 0.0f)) {}
  void check_slots(const KernelInfo& info, int slots) {
    if (slots != 1) info.fail("takes one state slot (sum), got " + std::to_string(slots));
  }
  template <typename T>
  void apply(const Step& s, const Chunk<T>& c) const {
    // clr = lr / (1 + (t - 1) * lr_decay); sum += g^2; p -= clr * g / (sqrt(sum) + eps).
    const T clr = T(s.lr / (1.0f + (s.t - 1.0f) * lr_decay_));
    const T wd = T(wd_), eps = T(eps_);
#pragma GCC ivdep
    for (int64_t k = 0; k < c.n; ++k) {
      const T g = c.grad(k) + c.x[k] * wd;
      const T sum = c.s[0][k] + g * g;
      c.s_out[0][k] = sum;
      c.x_out[k] = c.x[k] - clr * (g / (std::sqrt(sum) + eps));
    }
  }
  float lr_decay_, eps_, wd_;
};

struct RMSpropRule {
  static constexpr bool kTwoPass = false;
  explicit RMSpropRule(const KernelInfo& info)
      : alpha_(info.attr_float("alpha", 0.99f)),
        eps_(info.attr_float("epsilon", 1e-8f)),
        wd_(info.attr_float("weight_decay", 0.0f)),
        momentum_(info.attr_float("momentum", 0.0f)),
        centered_(info.attr_int("centered", 0) != 0) {}
  // Slots: square_avg, then grad_avg when centered, then a momentum buffer if present.
  void check_slots(const KernelInfo& info, int slots) {
    const int extra = slots - 1 - (centered_ ? 1 : 0);
    if (extra < 0 || extra > 1) {
      info.fail("takes square_avg" + std::string(centered_ ? ", grad_avg" : "") +
                " and an optional momentum buffer as state slots, got " + std::to_string(slots));
    }
    buffer_ = extra == 1;
  }
  template <typename T>
  void apply(const Step& s, const Chunk<T>& c) const {
    // Each variant its own loop, so the vectorizer sees no conditional stores.
    if (centered_) {
      buffer_ ? run<true, true>(s, c) : run<true, false>(s, c);
    } else {
      buffer_ ? run<false, true>(s, c) : run<false, false>(s, c);
    }
  }
  template <bool kCentered, bool kBuffer, typename T>
  void run(const Step& s, const Chunk<T>& c) const {
    const T lr = T(s.lr), wd = T(wd_), a = T(alpha_), rest = T(one_minus(alpha_));
    const T eps = T(eps_), mom = T(momentum_);
    constexpr int buf = kCentered ? 2 : 1;
#pragma GCC ivdep
    for (int64_t k = 0; k < c.n; ++k) {
      const T g = c.grad(k) + c.x[k] * wd;
      const T v = c.s[0][k] * a + (g * g) * rest;
      c.s_out[0][k] = v;
      T var = v;
      if constexpr (kCentered) {
        const T mean = c.s[1][k] * a + g * rest;
        c.s_out[1][k] = mean;
        var = v - mean * mean;
      }
      T scaled = g / (std::sqrt(var) + eps);
      if constexpr (kBuffer) {
        scaled = c.s[buf][k] * mom + scaled;
        c.s_out[buf][k] = scaled;
      }
      c.x_out[k] = c.x[k] - lr * scaled;
    }
  }
  float alpha_, eps_, wd_, momentum_;
  bool centered_;
  bool buffer_ = false;
};

// LAMB: the moments and the sums of squares of p and of the direction r in a first pass, the
// update scaled by the per-tensor trust ratio ||p|| / ||r|| in a second.
struct LAMBRule {
  static constexpr bool kTwoPass = true;
  explicit LAMBRule(const KernelInfo& info)
      : b1_(info.attr_float("beta1", 0.9f)),
        b2_(info.attr_float("beta2", 0.999f)),
        eps_(info.attr_float("epsilon", 1e-6f)),
        wd_(info.attr_float("weight_decay", 0.0f)) {}
  void check_slots(const KernelInfo& info, int slots) {
    if (slots != 2) info.fail("takes two state slots (m, v), got " + std::to_string(slots));
  }
  // r = m_hat / (sqrt(v_hat) + eps) + wd * p from the new moments.
  template <typename T>
  struct Direction {
    T bc1, bc2, eps, wd;
    T operator()(T x, T m, T v) const { return (m / bc1) / (std::sqrt(v / bc2) + eps) + x * wd; }
  };
  template <typename T>
  Direction<T> direction(const Step& s) const {
    return {T(correction(b1_, s.t)), T(correction(b2_, s.t)), T(eps_), T(wd_)};
  }
  // First pass: new moments; returns the sums of p^2 and r^2 over the chunk.
  template <typename T>
  std::array<double, 2> apply(const Step& s, const Chunk<T>& c) const {
    const T b1 = T(b1_), b2 = T(b2_), rest1 = T(one_minus(b1_)), rest2 = T(one_minus(b2_));
    const Direction<T> r = direction<T>(s);
    double pp = 0, rr = 0;
#pragma GCC ivdep
    for (int64_t k = 0; k < c.n; ++k) {
      const T g = c.grad(k);
      const T m = c.s[0][k] * b1 + g * rest1;
      const T v = c.s[1][k] * b2 + (g * g) * rest2;
      c.s_out[0][k] = m;
      c.s_out[1][k] = v;
      const double x = static_cast<double>(c.x[k]), d = static_cast<double>(r(c.x[k], m, v));
      pp += x * x;
      rr += d * d;
    }
    return {pp, rr};
  }
  template <typename T>
  static T trust(double pp, double rr) {
    const T pn = T(std::sqrt(pp)), rn = T(std::sqrt(rr));
    return pn > T(0) && rn > T(0) ? pn / rn : T(1);
  }
  // Second pass, from the new moments in s_out.
  template <typename T>
  void finish(const Step& s, const Chunk<T>& c) const {
    const Direction<T> r = direction<T>(s);
    const T scale = T(s.lr) * c.trust;
#pragma GCC ivdep
    for (int64_t k = 0; k < c.n; ++k)
      c.x_out[k] = c.x[k] - scale * r(c.x[k], c.s_out[0][k], c.s_out[1][k]);
  }
  float b1_, b2_, eps_, wd_;
};

template <typename Rule>
class MultiTensorUpdate : public Kernel, public InPlaceKernel {
 public:
  explicit MultiTensorUpdate(const KernelInfo& info)
      : rule_(info),
        max_norm_(info.attr_float("max_grad_norm", 0.0f)),
        layout_(info),
        n_(layout_.tensors()),
        slots_(layout_.slots()) {
    rule_.check_slots(info, slots_);
  }

  std::vector<std::pair<int, int>> in_place_pairs() const override {
    return layout_.in_place_pairs();
  }

  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    const Step s = layout_.read_step(ctx);
    layout_.check_inputs(ctx);
    const std::vector<void*> out = layout_.outputs(ctx, reuse);
    // The chunks: (tensor, first element, count).
    struct Range {
      int tensor;
      int64_t begin, count;
    };
    std::vector<Range> ranges;
    int64_t total = 0;
    for (int i = 0; i < n_; ++i) {
      const int64_t size = ctx.input(2 + i).size();
      for (int64_t b = 0; b < size; b += kChunk)
        ranges.push_back({i, b, std::min(kChunk, size - b)});
      total += size;
    }
    const auto num = static_cast<int64_t>(ranges.size());
    const bool parallel = total > 4 * kChunk;
    auto chunk = [&](const Range& r, auto tag, double coef, double trust) {
      using T = typename decltype(tag)::type;
      Chunk<T> c{};
      auto in = [&](int j) { return ctx.input(j).template data<T>() + r.begin; };
      c.x = in(2 + r.tensor);
      c.g = in(2 + n_ + r.tensor);
      c.x_out = static_cast<T*>(out[static_cast<size_t>(r.tensor)]) + r.begin;
      for (int k = 0; k < slots_; ++k) {
        c.s[static_cast<size_t>(k)] = in(2 + (2 + k) * n_ + r.tensor);
        c.s_out[static_cast<size_t>(k)] =
            static_cast<T*>(out[static_cast<size_t>((1 + k) * n_ + r.tensor)]) + r.begin;
      }
      c.n = r.count;
      c.clip = max_norm_ > 0;
      c.coef = T(static_cast<float>(coef));
      c.trust = T(trust);
      return c;
    };
    auto is_double = [&](const Range& r) {
      return ctx.input(2 + r.tensor).dtype() == DType::Double;
    };

    // Global-norm clipping: min(1, max_norm / (||G||_2 + 1e-6)), as the function body computes.
    double coef = 1.0;
    if (max_norm_ > 0) {
      std::vector<double> partial(static_cast<size_t>(num));
#pragma omp parallel for schedule(dynamic) if (parallel)
      for (int64_t k = 0; k < num; ++k) {
        const Range& r = ranges[static_cast<size_t>(k)];
        double sum = 0;
        auto add = [&](auto tag) {
          using T = typename decltype(tag)::type;
          const T* g = ctx.input(2 + n_ + r.tensor).template data<T>() + r.begin;
          for (int64_t e = 0; e < r.count; ++e) sum += static_cast<double>(g[e] * g[e]);
        };
        if (is_double(r))
          add(TypeTag<double>{});
        else
          add(TypeTag<float>{});
        partial[static_cast<size_t>(k)] = sum;
      }
      double sum = 0;
      for (double p : partial) sum += p;
      const float norm = std::sqrt(static_cast<float>(sum));
      coef = std::min(max_norm_ / (norm + 1e-6f), 1.0f);
    }

    if constexpr (!Rule::kTwoPass) {
#pragma omp parallel for schedule(dynamic) if (parallel)
      for (int64_t k = 0; k < num; ++k) {
        const Range& r = ranges[static_cast<size_t>(k)];
        if (is_double(r)) {
          rule_.apply(s, chunk(r, TypeTag<double>{}, coef, 1.0));
        } else {
          rule_.apply(s, chunk(r, TypeTag<float>{}, coef, 1.0));
        }
      }
    } else {
      std::vector<std::array<double, 2>> partial(static_cast<size_t>(num));
#pragma omp parallel for schedule(dynamic) if (parallel)
      for (int64_t k = 0; k < num; ++k) {
        const Range& r = ranges[static_cast<size_t>(k)];
        partial[static_cast<size_t>(k)] =
            is_double(r) ? rule_.apply(s, chunk(r, TypeTag<double>{}, coef, 1.0))
                         : rule_.apply(s, chunk(r, TypeTag<float>{}, coef, 1.0));
      }
      std::vector<std::array<double, 2>> sums(static_cast<size_t>(n_), {0.0, 0.0});
      for (int64_t k = 0; k < num; ++k) {
        auto& t = sums[static_cast<size_t>(ranges[static_cast<size_t>(k)].tensor)];
        t[0] += partial[static_cast<size_t>(k)][0];
        t[1] += partial[static_cast<size_t>(k)][1];
      }
#pragma omp parallel for schedule(dynamic) if (parallel)
      for (int64_t k = 0; k < num; ++k) {
        const Range& r = ranges[static_cast<size_t>(k)];
        const auto& t = sums[static_cast<size_t>(r.tensor)];
        if (is_double(r)) {
          rule_.finish(s,
                       chunk(r, TypeTag<double>{}, coef, Rule::template trust<double>(t[0], t[1])));
        } else {
          rule_.finish(s,
                       chunk(r, TypeTag<float>{}, coef, Rule::template trust<float>(t[0], t[1])));
        }
      }
    }
  }

 private:
  Rule rule_;
  float max_norm_;
  UpdateLayout layout_;
  int n_, slots_;
};

}  // namespace

GRAFT_CPU_KERNELS(optimizer_updates) {
  reg.add({names::kDomain, "SGDUpdate", 1, 1 << 30, {}, 0, make<MultiTensorUpdate<SGDRule>>});
  reg.add({names::kDomain, "AdamUpdate", 1, 1 << 30, {}, 0, make<MultiTensorUpdate<AdamRule>>});
  reg.add(
      {names::kDomain, "AdagradUpdate", 1, 1 << 30, {}, 0, make<MultiTensorUpdate<AdagradRule>>});
  reg.add(
      {names::kDomain, "RMSpropUpdate", 1, 1 << 30, {}, 0, make<MultiTensorUpdate<RMSpropRule>>});
  reg.add({names::kDomain, "LAMBUpdate", 1, 1 << 30, {}, 0, make<MultiTensorUpdate<LAMBRule>>});
}

}  // namespace graft
