// GRU with gates z (update), r (reset) and h (hidden), forward, reverse or bidirectional:
//   z = f(X W_z^T + H R_z^T + Wb_z + Rb_z),  r = f(X W_r^T + H R_r^T + Wb_r + Rb_r)
//   h = g(X W_h^T + (r . H) R_h^T + Rb_h + Wb_h)          (linear_before_reset = 0)
//   h = g(X W_h^T + r . (H R_h^T + Rb_h) + Wb_h)          (linear_before_reset = 1)
//   H' = (1 - z) . h + z . H
#include "exec/kernel.h"
#include "providers/cpu/rnn/rnn_util.h"

namespace graft {
namespace {

using cpu::rnn::RecurrentAttrs;
using cpu::rnn::RecurrentInputs;

class Gru : public Kernel {
 public:
  explicit Gru(const KernelInfo& info)
      : attrs_(info, {"Sigmoid", "Tanh"}),
        linear_before_reset_(info.attr_int("linear_before_reset", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    if (ctx.input(0).dtype() == DType::Double)
      run<double>(ctx);
    else
      run<float>(ctx);
  }

 private:
  template <typename T>
  void run(KernelContext& ctx) const {
    const RecurrentInputs<T> in = cpu::rnn::read_inputs<T>(ctx, attrs_, 3, false);
    const cpu::rnn::RecurrentDims& d = in.dims;
    const int64_t hs = d.hidden, batch = d.batch;
    std::vector<T> y(static_cast<size_t>(d.seq * d.dirs * batch * hs), T(0));
    std::vector<T> y_h(in.h0);
    // Recurrent products: z and r (and h when linear_before_reset) for every batch row.
    const int64_t rec_cols = linear_before_reset_ ? 3 * hs : 2 * hs;
    std::vector<T> hr(static_cast<size_t>(batch * rec_cols));
    std::vector<T> gates(static_cast<size_t>(batch * 2 * hs));  // activated z, r
    std::vector<T> rh(static_cast<size_t>(batch * hs)), rh_r(static_cast<size_t>(batch * hs));
    for (int dir = 0; dir < d.dirs; ++dir) {
      const bool reverse = attrs_.reverse(dir);
      const T* w = in.w.data() + dir * 3 * hs * d.input;
      const T* r = in.r.data() + dir * 3 * hs * hs;
      const T* wb = in.b.data() + dir * 6 * hs;
      const T* rb = wb + 3 * hs;
      // Biases folded into the input projection: all but Rb_h under linear_before_reset.
      std::vector<T> bias(static_cast<size_t>(3 * hs));
      for (int64_t j = 0; j < 3 * hs; ++j)
        bias[static_cast<size_t>(j)] = wb[j] + (linear_before_reset_ && j >= 2 * hs ? T(0) : rb[j]);
      const std::vector<T> xw = cpu::rnn::project_inputs(in, w, 3 * hs, bias);
      T* h = y_h.data() + dir * batch * hs;
      const cpu::rnn::Activation& f = attrs_.activation(dir, 0);
      const cpu::rnn::Activation& g = attrs_.activation(dir, 1);
      auto active = [&](int64_t step, int64_t bi) {
        return step < in.lengths[static_cast<size_t>(bi)];
      };
      auto input_row = [&](int64_t step, int64_t bi) {
        const int64_t t = cpu::rnn::time_index(step, in.lengths[static_cast<size_t>(bi)], reverse);
        return xw.data() + (t * batch + bi) * 3 * hs;
      };
      const cpu::rnn::SerialScope serial(cpu::rnn::serial_steps(batch * 3 * hs * hs));
      for (int64_t step = 0; step < in.max_length; ++step) {
        cpu::gemm<T>(false, true, batch, rec_cols, hs, h, r, hr.data());
        for (int64_t bi = 0; bi < batch; ++bi) {
          if (!active(step, bi)) continue;
          const T* xt = input_row(step, bi);
          const T* hrow = hr.data() + bi * rec_cols;
          T* zr = gates.data() + bi * 2 * hs;
          for (int64_t j = 0; j < 2 * hs; ++j) zr[j] = xt[j] + hrow[j];
          attrs_.clip(zr, 2 * hs);
          f.apply(zr, 2 * hs);
          for (int64_t j = 0; j < hs; ++j)
            rh[static_cast<size_t>(bi * hs + j)] = zr[hs + j] * h[bi * hs + j];
        }
        if (!linear_before_reset_)
          cpu::gemm<T>(false, true, batch, hs, hs, rh.data(), r + 2 * hs * hs, rh_r.data());
        for (int64_t bi = 0; bi < batch; ++bi) {
          if (!active(step, bi)) continue;
          const T* xt = input_row(step, bi) + 2 * hs;
          const T* zr = gates.data() + bi * 2 * hs;
          T* cand = rh.data() + bi * hs;
          if (linear_before_reset_) {
            const T* hrow = hr.data() + bi * rec_cols + 2 * hs;
            const T* rbh = rb + 2 * hs;
            for (int64_t j = 0; j < hs; ++j) cand[j] = xt[j] + zr[hs + j] * (hrow[j] + rbh[j]);
          } else {
            const T* prod = rh_r.data() + bi * hs;
            for (int64_t j = 0; j < hs; ++j) cand[j] = xt[j] + prod[j];
          }
          attrs_.clip(cand, hs);
          g.apply(cand, hs);
          T* hb = h + bi * hs;
          for (int64_t j = 0; j < hs; ++j) hb[j] = (T(1) - zr[j]) * cand[j] + zr[j] * hb[j];
          const int64_t t =
              cpu::rnn::time_index(step, in.lengths[static_cast<size_t>(bi)], reverse);
          std::copy_n(hb, hs, y.begin() + ((t * d.dirs + dir) * batch + bi) * hs);
        }
      }
    }
    const DType dtype = ctx.input(0).dtype();
    cpu::rnn::write_sequence(ctx, 0, dtype, d, attrs_.batch_major(), y);
    cpu::rnn::write_state(ctx, 1, dtype, d, attrs_.batch_major(), y_h);
  }

  RecurrentAttrs attrs_;
  bool linear_before_reset_;
};

}  // namespace

GRAFT_CPU_KERNELS(gru) {
  reg.add({"",
           "GRU",
           1,
           1 << 30,
           {DType::Float, DType::Double, DType::Float16, DType::BFloat16},
           0,
           make<Gru>});
}

}  // namespace graft
