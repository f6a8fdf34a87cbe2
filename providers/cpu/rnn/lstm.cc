// LSTM with gates i, o, f, c (the order of W, R and B), optional peepholes P (i, o, f),
// input_forget coupling (f = 1 - i), forward, reverse or bidirectional:
//   i = f(X W_i^T + H R_i^T + P_i . C + Wb_i + Rb_i)     f likewise with P_f
//   c = g(X W_c^T + H R_c^T + Wb_c + Rb_c),  C' = f . C + i . c
//   o = f(X W_o^T + H R_o^T + P_o . C' + Wb_o + Rb_o),  H' = o . h(C')
#include "exec/kernel.h"
#include "providers/cpu/rnn/rnn_util.h"

namespace graft {
namespace {

using cpu::rnn::RecurrentAttrs;
using cpu::rnn::RecurrentInputs;

class Lstm : public Kernel {
 public:
  explicit Lstm(const KernelInfo& info)
      : attrs_(info, {"Sigmoid", "Tanh", "Tanh"}),
        input_forget_(info.attr_int("input_forget", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    if (ctx.input(0).dtype() == DType::Double)
      run<double>(ctx);
    else
      run<float>(ctx);
  }

 private:
  template <typename T>
  void run(KernelContext& ctx) const {
    const RecurrentInputs<T> in = cpu::rnn::read_inputs<T>(ctx, attrs_, 4, true);
    const cpu::rnn::RecurrentDims& d = in.dims;
    const int64_t hs = d.hidden, batch = d.batch;
    std::vector<T> y(static_cast<size_t>(d.seq * d.dirs * batch * hs), T(0));
    std::vector<T> y_h(in.h0), y_c(in.c0);
    std::vector<T> gates(static_cast<size_t>(batch * 4 * hs));
    std::vector<T> cell(static_cast<size_t>(hs));
    for (int dir = 0; dir < d.dirs; ++dir) {
      const bool reverse = attrs_.reverse(dir);
      const T* w = in.w.data() + dir * 4 * hs * d.input;
      const T* r = in.r.data() + dir * 4 * hs * hs;
      const T* b = in.b.data() + dir * 8 * hs;
      const T* p_i = in.p.data() + dir * 3 * hs;
      const T* p_o = p_i + hs;
      const T* p_f = p_i + 2 * hs;
      std::vector<T> bias(static_cast<size_t>(4 * hs));
      for (int64_t j = 0; j < 4 * hs; ++j) bias[static_cast<size_t>(j)] = b[j] + b[4 * hs + j];
      const std::vector<T> xw = cpu::rnn::project_inputs(in, w, 4 * hs, bias);
      T* h = y_h.data() + dir * batch * hs;
      T* c = y_c.data() + dir * batch * hs;
      const cpu::rnn::Activation& f = attrs_.activation(dir, 0);
      const cpu::rnn::Activation& g = attrs_.activation(dir, 1);
      const cpu::rnn::Activation& act_h = attrs_.activation(dir, 2);
      const cpu::rnn::SerialScope serial(cpu::rnn::serial_steps(batch * 4 * hs * hs));
      for (int64_t step = 0; step < in.max_length; ++step) {
        cpu::gemm<T>(false, true, batch, 4 * hs, hs, h, r, gates.data());
        for (int64_t bi = 0; bi < batch; ++bi) {
          const int64_t len = in.lengths[static_cast<size_t>(bi)];
          if (step >= len) continue;
          const int64_t t = cpu::rnn::time_index(step, len, reverse);
          const T* xt = xw.data() + (t * batch + bi) * 4 * hs;
          T* gi = gates.data() + bi * 4 * hs;
          T* go = gi + hs;
          T* gf = gi + 2 * hs;
          T* gc = gi + 3 * hs;
          T* cb = c + bi * hs;
          for (int64_t j = 0; j < 4 * hs; ++j) gi[j] += xt[j];
          for (int64_t j = 0; j < hs; ++j) {
            gi[j] += p_i[j] * cb[j];
            gf[j] += p_f[j] * cb[j];
          }
          attrs_.clip(gi, hs);
          f.apply(gi, hs);
          if (input_forget_) {
            for (int64_t j = 0; j < hs; ++j) gf[j] = T(1) - gi[j];
          } else {
            attrs_.clip(gf, hs);
            f.apply(gf, hs);
          }
          attrs_.clip(gc, hs);
          g.apply(gc, hs);
          for (int64_t j = 0; j < hs; ++j) {
            cb[j] = gf[j] * cb[j] + gi[j] * gc[j];
            go[j] += p_o[j] * cb[j];
          }
          attrs_.clip(go, hs);
          f.apply(go, hs);
          std::copy_n(cb, hs, cell.begin());
          act_h.apply(cell.data(), hs);
          T* hb = h + bi * hs;
          for (int64_t j = 0; j < hs; ++j) hb[j] = go[j] * cell[static_cast<size_t>(j)];
          std::copy_n(hb, hs, y.begin() + ((t * d.dirs + dir) * batch + bi) * hs);
        }
      }
    }
    const DType dtype = ctx.input(0).dtype();
    cpu::rnn::write_sequence(ctx, 0, dtype, d, attrs_.batch_major(), y);
    cpu::rnn::write_state(ctx, 1, dtype, d, attrs_.batch_major(), y_h);
    cpu::rnn::write_state(ctx, 2, dtype, d, attrs_.batch_major(), y_c);
  }

  RecurrentAttrs attrs_;
  bool input_forget_;
};

}  // namespace

GRAFT_CPU_KERNELS(lstm) {
  reg.add({"",
           "LSTM",
           1,
           1 << 30,
           {DType::Float, DType::Double, DType::Float16, DType::BFloat16},
           0,
           make<Lstm>});
}

}  // namespace graft
