// com.graft's fused optimizer updates on the device: SGDUpdate, AdamUpdate (Adam, and AdamW with
// decoupled_weight_decay = 1), AdagradUpdate, RMSpropUpdate and LAMBUpdate, with the contract of
// optim/update_ops.h and the arithmetic of providers/cpu/training/optimizer_updates.cc (each tensor
// in its own type, float or double, with the same operations in the same order).
//
// One launch updates up to kTensorsPerLaunch tensors of one type: their pointers and running
// element counts travel in the launch's arguments (TensorTable), and each element finds its tensor
// by binary search. lr and step are host inputs. Global-norm clipping (max_grad_norm > 0) and
// LAMB's per-tensor norms are sums over rows of kNormRow elements, each inside one tensor, then
// over the rows; the clipping factor and the trust ratios are computed from those sums on the
// device, so nothing waits for the device. Each new tensor may be written into the buffer of the
// tensor it replaces (InPlaceKernel): every element is read before it is written, at its index.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "exec/plan.h"
#include "exec/update_layout.h"
#include "ir/names.h"
#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

inline constexpr int kMaxUpdateSlots = 3;
inline constexpr int kTensorsPerLaunch = 32;
inline constexpr int64_t kNormRow = 4096;

// The tensors of one launch. Element i of the launch is element i - begin(k) of tensor k, where
// end[k - 1] <= i < end[k]; row r of the norm sums is row r - row_begin(k) of tensor k likewise.
template <typename T>
struct TensorTable {
  int count;
  int64_t end[kTensorsPerLaunch];
  int64_t row_end[kTensorsPerLaunch];
  const T* x[kTensorsPerLaunch];
  const T* g[kTensorsPerLaunch];
  T* x_out[kTensorsPerLaunch];
  const T* s[kMaxUpdateSlots][kTensorsPerLaunch];
  T* s_out[kMaxUpdateSlots][kTensorsPerLaunch];

  GRAFT_HD static int search(const int64_t* ends, int count, int64_t i) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (ends[mid] <= i) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
  GRAFT_HD int tensor_of(int64_t i) const { return search(end, count, i); }
  GRAFT_HD int tensor_of_row(int64_t r) const { return search(row_end, count, r); }
  GRAFT_HD int64_t begin(int k) const { return k == 0 ? 0 : end[k - 1]; }
  GRAFT_HD int64_t row_begin(int k) const { return k == 0 ? 0 : row_end[k - 1]; }
  GRAFT_HD int64_t size(int k) const { return end[k] - begin(k); }
};

// min(1, max_norm / (||G||_2 + 1e-6)) from the gradients' sum of squares, as the CPU computes it.
GRAFT_HD float clip_factor(double sum_of_squares, float max_norm) {
  const float c = max_norm / (math_sqrt(static_cast<float>(sum_of_squares)) + 1e-6f);
  return 1.0f < c ? 1.0f : c;
}

// The learning rate and the step number t (1 on the first update).

inline float one_minus(float v) { return 1.0f - v; }
inline float bias_correction(float beta, float t) {
  return 1.0f - static_cast<float>(std::pow(static_cast<double>(beta), static_cast<double>(t)));
}

// ---------------------------------------------------------------------------------------------
// Per-element rules: apply(table, k, e, g) updates element e of tensor k with gradient g (already
// clipped). Their constants are the CPU's float expressions, taken to T where the CPU does.

struct SGDParams {
  float lr, wd, momentum, damp;
  bool buffer, first, nesterov;
  template <typename T>
  GRAFT_HD void apply(const TensorTable<T>& t, int k, int64_t e, T g) const {
    const T x = t.x[k][e];
    g = g + x * T(wd);
    if (buffer) {
      // torch: buf = g on the first update, then momentum * buf + (1 - dampening) * g.
      T buf = g;
      if (!first) buf = t.s[0][k][e] * T(momentum) + g * T(damp);
      t.s_out[0][k][e] = buf;
      g = nesterov ? g + buf * T(momentum) : buf;
    }
    t.x_out[k][e] = x - T(lr) * g;
  }
};

struct AdamParams {
  float lr, wd, b1, b2, eps, rest1, rest2, step_size, root;
  bool decoupled;
  template <typename T>
  GRAFT_HD void apply(const TensorTable<T>& t, int k, int64_t e, T g) const {
    const T x = t.x[k][e];
    if (!decoupled) g = g + x * T(wd);
    const T m = t.s[0][k][e] * T(b1) + g * T(rest1);
    const T v = t.s[1][k][e] * T(b2) + (g * g) * T(rest2);
    t.s_out[0][k][e] = m;
    t.s_out[1][k][e] = v;
    const T base = decoupled ? x * (T(1) - T(lr) * T(wd)) : x;
    t.x_out[k][e] = base - T(step_size) * (m / (math_sqrt(v) / T(root) + T(eps)));
  }
};

struct AdagradParams {
  float clr, wd, eps;
  template <typename T>
  GRAFT_HD void apply(const TensorTable<T>& t, int k, int64_t e, T g) const {
    const T x = t.x[k][e];
    g = g + x * T(wd);
    const T sum = t.s[0][k][e] + g * g;
    t.s_out[0][k][e] = sum;
    t.x_out[k][e] = x - T(clr) * (g / (math_sqrt(sum) + T(eps)));
  }
};

struct RMSpropParams {
  float lr, wd, alpha, rest, eps, momentum;
  bool centered, buffer;
  template <typename T>
  GRAFT_HD void apply(const TensorTable<T>& t, int k, int64_t e, T g) const {
    const T x = t.x[k][e];
    g = g + x * T(wd);
    const T v = t.s[0][k][e] * T(alpha) + (g * g) * T(rest);
    t.s_out[0][k][e] = v;
    T var = v;
    if (centered) {
      const T mean = t.s[1][k][e] * T(alpha) + g * T(rest);
      t.s_out[1][k][e] = mean;
      var = v - mean * mean;
    }
    T scaled = g / (math_sqrt(var) + T(eps));
    if (buffer) {
      const int slot = centered ? 2 : 1;
      scaled = t.s[slot][k][e] * T(momentum) + scaled;
      t.s_out[slot][k][e] = scaled;
    }
    t.x_out[k][e] = x - T(lr) * scaled;
  }
};

// LAMB's first pass: the new moments. Its direction r = m_hat / (sqrt(v_hat) + eps) + wd * p is
// read again by the norm sums and by finish, which scales it by the tensor's trust ratio.
struct LAMBParams {
  float lr, b1, b2, rest1, rest2, bc1, bc2, eps, wd;
  template <typename T>
  GRAFT_HD void apply(const TensorTable<T>& t, int k, int64_t e, T g) const {
    t.s_out[0][k][e] = t.s[0][k][e] * T(b1) + g * T(rest1);
    t.s_out[1][k][e] = t.s[1][k][e] * T(b2) + (g * g) * T(rest2);
  }
  template <typename T>
  GRAFT_HD T direction(const TensorTable<T>& t, int k, int64_t e) const {
    const T m = t.s_out[0][k][e], v = t.s_out[1][k][e];
    return (m / T(bc1)) / (math_sqrt(v / T(bc2)) + T(eps)) + t.x[k][e] * T(wd);
  }
};

// ---------------------------------------------------------------------------------------------
// What the backend runs.

template <typename T, typename Params>
struct UpdateFn {
  TensorTable<T> table;
  Params params;
  const double* grad_sum;  // the gradients' sum of squares when clipping, else nullptr
  float max_norm;
  GRAFT_HD void operator()(int64_t i) const {
    const int k = table.tensor_of(i);
    const int64_t e = i - table.begin(k);
    T g = table.g[k][e];
    if (grad_sum != nullptr) g = g * T(clip_factor(*grad_sum, max_norm));
    params.apply(table, k, e, g);
  }
};

struct SumPair {
  double a, b;
};

// Sums over rows of kNormRow elements: of g^2 (Pairs false), or of p^2 and r^2 (LAMB's norms).
template <typename T, bool Pairs>
struct RowSumOp {
  using Acc = std::conditional_t<Pairs, SumPair, double>;
  TensorTable<T> table;
  LAMBParams lamb;
  Acc* out;  // one per row
  GRAFT_HD Acc identity() const { return Acc{}; }
  GRAFT_HD Acc load(int64_t r, int64_t j) const {
    const int k = table.tensor_of_row(r);
    const int64_t e = (r - table.row_begin(k)) * kNormRow + j;
    if (e >= table.size(k)) return Acc{};
    if constexpr (Pairs) {
      const double x = static_cast<double>(table.x[k][e]);
      const double d = static_cast<double>(lamb.direction(table, k, e));
      return {x * x, d * d};
    } else {
      const T g = table.g[k][e];
      return static_cast<double>(g * g);
    }
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const {
    if constexpr (Pairs) {
      return {a.a + b.a, a.b + b.b};
    } else {
      return a + b;
    }
  }
  GRAFT_HD void store(int64_t r, Acc acc) const { out[r] = acc; }
};

// Row r sums the parts [begin[r], end[r]) of `parts` into out[r] (at most `cols` parts a row).
template <typename A>
struct PartSumOp {
  using Acc = A;
  const Acc* parts;
  Acc* out;
  int64_t begin[kTensorsPerLaunch];
  int64_t end[kTensorsPerLaunch];
  GRAFT_HD Acc identity() const { return Acc{}; }
  GRAFT_HD Acc load(int64_t r, int64_t j) const {
    return begin[r] + j < end[r] ? parts[begin[r] + j] : Acc{};
  }
  GRAFT_HD Acc combine(Acc a, Acc b) const {
    if constexpr (std::is_same_v<Acc, SumPair>) {
      return {a.a + b.a, a.b + b.b};
    } else {
      return a + b;
    }
  }
  GRAFT_HD void store(int64_t r, Acc acc) const { out[r] = acc; }
};

// LAMB's second pass: p -= lr * trust * r, trust = ||p|| / ||r|| of the tensor (1 if either is 0).
template <typename T>
struct LAMBFinishFn {
  TensorTable<T> table;
  LAMBParams lamb;
  const SumPair* norms;  // per tensor of the table
  GRAFT_HD void operator()(int64_t i) const {
    const int k = table.tensor_of(i);
    const int64_t e = i - table.begin(k);
    const T pn = T(math_sqrt(norms[k].a)), rn = T(math_sqrt(norms[k].b));
    const T trust = pn > T(0) && rn > T(0) ? pn / rn : T(1);
    const T r = lamb.direction(table, k, e);
    table.x_out[k][e] = table.x[k][e] - T(lamb.lr) * trust * r;
  }
};

// ---------------------------------------------------------------------------------------------
// Host side: attributes, and the per-run constants of each rule.

struct SGDRule {
  using Params = SGDParams;
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
  Params params(const UpdateStep& s) const {
    return {s.lr, wd_, momentum_, damp_, buffer_, s.step == 0, nesterov_};
  }
  float momentum_, damp_, wd_;
  bool nesterov_;
  bool buffer_ = false;
};

struct AdamRule {
  using Params = AdamParams;
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
  Params params(const UpdateStep& s) const {
    // p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), torch's arrangement.
    return {s.lr,
            wd_,
            b1_,
            b2_,
            eps_,
            one_minus(b1_),
            one_minus(b2_),
            s.lr / bias_correction(b1_, s.t),
            std::sqrt(bias_correction(b2_, s.t)),
            decoupled_};
  }
  float b1_, b2_, eps_, wd_;
  bool decoupled_;
};

struct AdagradRule {
  using Params = AdagradParams;
  static constexpr bool kTwoPass = false;
  explicit AdagradRule(const KernelInfo& info)
      : lr_decay_(info.attr_float("lr_decay", 0.0f)),
        eps_(info.attr_float("epsilon", 1e-10f)),
        wd_(info.attr_float("weight_decay", 0.0f)) {}
  void check_slots(const KernelInfo& info, int slots) {
    if (slots != 1) info.fail("takes one state slot (sum), got " + std::to_string(slots));
  }
  Params params(const UpdateStep& s) const {
    return {s.lr / (1.0f + (s.t - 1.0f) * lr_decay_), wd_, eps_};
  }
  float lr_decay_, eps_, wd_;
};

struct RMSpropRule {
  using Params = RMSpropParams;
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
  Params params(const UpdateStep& s) const {
    return {s.lr, wd_, alpha_, one_minus(alpha_), eps_, momentum_, centered_, buffer_};
  }
  float alpha_, eps_, wd_, momentum_;
  bool centered_;
  bool buffer_ = false;
};

struct LAMBRule {
  using Params = LAMBParams;
  static constexpr bool kTwoPass = true;
  explicit LAMBRule(const KernelInfo& info)
      : b1_(info.attr_float("beta1", 0.9f)),
        b2_(info.attr_float("beta2", 0.999f)),
        eps_(info.attr_float("epsilon", 1e-6f)),
        wd_(info.attr_float("weight_decay", 0.0f)) {}
  void check_slots(const KernelInfo& info, int slots) {
    if (slots != 2) info.fail("takes two state slots (m, v), got " + std::to_string(slots));
  }
  Params params(const UpdateStep& s) const {
    return {s.lr,
            b1_,
            b2_,
            one_minus(b1_),
            one_minus(b2_),
            bias_correction(b1_, s.t),
            bias_correction(b2_, s.t),
            eps_,
            wd_};
  }
  float b1_, b2_, eps_, wd_;
};

// The tensors of one launch: one type, at most kTensorsPerLaunch, none empty.
struct UpdateGroup {
  DType dtype;
  std::vector<int> tensors;
  int64_t elements = 0;
  int64_t rows = 0;      // of kNormRow elements
  int64_t max_rows = 0;  // of one tensor
  int64_t first_row = 0;
};

template <class B, typename Rule>
class UpdateKernel final : public DeviceKernel<B>, public InPlaceKernel {
 public:
  explicit UpdateKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        rule_(info),
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
    // lr and step are host inputs (KernelDef::host_inputs).
    const UpdateStep step = layout_.read_step(ctx);
    layout_.check_inputs(ctx);
    const std::vector<void*> out = layout_.outputs(ctx, reuse);
    const std::vector<UpdateGroup> groups = make_groups(ctx);
    if (groups.empty()) return;
    Allocator& memory = this->backend().allocator();
    Tensor grad_sum;
    if (max_norm_ > 0) {
      grad_sum = Tensor::empty(DType::Double, {1}, memory);
      sum_gradient_squares(ctx, out, groups, grad_sum.data<double>());
    }
    const typename Rule::Params params = rule_.params(step);
    const double* clip = max_norm_ > 0 ? grad_sum.data<double>() : nullptr;
    for (const UpdateGroup& group : groups) {
      dispatch_update(group.dtype, ctx, [&](auto tag) {
        using T = typename decltype(tag)::type;
        const TensorTable<T> table = table_of<T>(ctx, out, group);
        this->backend().for_each(
            group.elements, UpdateFn<T, typename Rule::Params>{table, params, clip, max_norm_});
        if constexpr (Rule::kTwoPass) finish_lamb(table, group, params);
      });
    }
  }

 private:
  template <typename F>
  static void dispatch_update(DType dtype, KernelContext& ctx, F&& f) {
    if (dtype == DType::Double) {
      f(TypeTag<double>{});
    } else if (dtype == DType::Float) {
      f(TypeTag<float>{});
    } else {
      ctx.fail(std::string("cannot update a tensor of ") + dtype_name(dtype));
    }
  }

  // Consecutive non-empty tensors of one type, kTensorsPerLaunch at most a launch.
  std::vector<UpdateGroup> make_groups(KernelContext& ctx) const {
    std::vector<UpdateGroup> groups;
    int64_t rows = 0;
    for (int i = 0; i < n_; ++i) {
      const Tensor& x = ctx.input(2 + i);
      if (x.size() == 0) continue;
      if (groups.empty() || groups.back().dtype != x.dtype() ||
          groups.back().tensors.size() == static_cast<size_t>(kTensorsPerLaunch)) {
        groups.push_back({x.dtype(), {}});
        groups.back().first_row = rows;
      }
      UpdateGroup& g = groups.back();
      const int64_t r = (x.size() + kNormRow - 1) / kNormRow;
      g.tensors.push_back(i);
      g.elements += x.size();
      g.rows += r;
      g.max_rows = std::max(g.max_rows, r);
      rows += r;
    }
    return groups;
  }

  // The launch's table; `out` holds the output buffers, parameters first, then each slot's.
  template <typename T>
  TensorTable<T> table_of(KernelContext& ctx, const std::vector<void*>& out,
                          const UpdateGroup& group) const {
    TensorTable<T> t{};
    t.count = static_cast<int>(group.tensors.size());
    int64_t elements = 0, rows = 0;
    for (int k = 0; k < t.count; ++k) {
      const int i = group.tensors[static_cast<size_t>(k)];
      const int64_t size = ctx.input(2 + i).size();
      elements += size;
      rows += (size + kNormRow - 1) / kNormRow;
      t.end[k] = elements;
      t.row_end[k] = rows;
      t.x[k] = ctx.input(2 + i).template data<T>();
      t.g[k] = ctx.input(2 + n_ + i).template data<T>();
      t.x_out[k] = static_cast<T*>(out[static_cast<size_t>(i)]);
      for (int s = 0; s < slots_; ++s) {
        t.s[s][k] = ctx.input(2 + (2 + s) * n_ + i).template data<T>();
        t.s_out[s][k] = static_cast<T*>(out[static_cast<size_t>((1 + s) * n_ + i)]);
      }
    }
    return t;
  }

  // The gradients' global sum of squares into *sum (device memory): per row, then over the rows.
  void sum_gradient_squares(KernelContext& ctx, const std::vector<void*>& out,
                            const std::vector<UpdateGroup>& groups, double* sum) const {
    const int64_t rows = groups.back().first_row + groups.back().rows;
    Tensor parts = Tensor::empty(DType::Double, {rows}, this->backend().allocator());
    for (const UpdateGroup& group : groups) {
      dispatch_update(group.dtype, ctx, [&](auto tag) {
        using T = typename decltype(tag)::type;
        this->backend().reduce_rows(
            group.rows, kNormRow,
            RowSumOp<T, false>{
                table_of<T>(ctx, out, group), {}, parts.data<double>() + group.first_row});
      });
    }
    PartSumOp<double> total{parts.data<double>(), sum, {0}, {rows}};
    this->backend().reduce_rows(1, rows, total);
  }

  // LAMB after the moments: the norms of p and r per row, per tensor, then the scaled update.
  template <typename T, typename Params>
  void finish_lamb(const TensorTable<T>& table, const UpdateGroup& group,
                   const Params& lamb) const {
    Allocator& memory = this->backend().allocator();
    Tensor parts = Tensor::empty(DType::Double, {2 * group.rows}, memory);
    Tensor norms = Tensor::empty(DType::Double, {2 * table.count}, memory);
    auto* row_sums = reinterpret_cast<SumPair*>(parts.data<double>());
    auto* tensor_sums = reinterpret_cast<SumPair*>(norms.data<double>());
    this->backend().reduce_rows(group.rows, kNormRow, RowSumOp<T, true>{table, lamb, row_sums});
    PartSumOp<SumPair> per_tensor{row_sums, tensor_sums, {}, {}};
    for (int k = 0; k < table.count; ++k) {
      per_tensor.begin[k] = table.row_begin(k);
      per_tensor.end[k] = table.row_end[k];
    }
    this->backend().reduce_rows(table.count, group.max_rows, per_tensor);
    this->backend().for_each(group.elements, LAMBFinishFn<T>{table, lamb, tensor_sums});
  }

  Rule rule_;
  float max_norm_;
  UpdateLayout layout_;
  int n_, slots_;
};

template <class B>
void register_optimizer(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  const std::vector<int> host = {0, 1};  // lr, step
  reg.add({names::kDomain, "SGDUpdate", 1, kAny, {}, 0, make<UpdateKernel<B, SGDRule>>, host});
  reg.add({names::kDomain, "AdamUpdate", 1, kAny, {}, 0, make<UpdateKernel<B, AdamRule>>, host});
  reg.add(
      {names::kDomain, "AdagradUpdate", 1, kAny, {}, 0, make<UpdateKernel<B, AdagradRule>>, host});
  reg.add(
      {names::kDomain, "RMSpropUpdate", 1, kAny, {}, 0, make<UpdateKernel<B, RMSpropRule>>, host});
  reg.add({names::kDomain, "LAMBUpdate", 1, kAny, {}, 0, make<UpdateKernel<B, LAMBRule>>, host});
}

}  // namespace graft::cuda
