// RNN: H_t = f(X_t * W^T + H_{t-1} * R^T + Wb + Rb), forward, reverse or bidirectional, with
// per-batch sequence lengths. The input projection of all steps is one GEMM; each step adds
// one GEMM with R.
#include "exec/kernel.h"
#include "providers/cpu/rnn/rnn_util.h"

namespace graft {
namespace {

using cpu::rnn::RecurrentAttrs;
using cpu::rnn::RecurrentInputs;

class Rnn : public Kernel {
 public:
  explicit Rnn(const KernelInfo& info) : attrs_(info, {"Tanh"}) {}

  void compute(KernelContext& ctx) override {
    if (ctx.input(0).dtype() == DType::Double)
      run<double>(ctx);
    else
      run<float>(ctx);
  }

 private:
  template <typename T>
  void run(KernelContext& ctx) const {
    const RecurrentInputs<T> in = cpu::rnn::read_inputs<T>(ctx, attrs_, 1, false);
    const cpu::rnn::RecurrentDims& d = in.dims;
    const int64_t hs = d.hidden, batch = d.batch;
    std::vector<T> y(static_cast<size_t>(d.seq * d.dirs * batch * hs), T(0));
    std::vector<T> y_h(in.h0);
    std::vector<T> hr(static_cast<size_t>(batch * hs));
    for (int dir = 0; dir < d.dirs; ++dir) {
      const bool reverse = attrs_.reverse(dir);
      const T* w = in.w.data() + dir * hs * d.input;
      const T* r = in.r.data() + dir * hs * hs;
      const T* b = in.b.data() + dir * 2 * hs;
      std::vector<T> bias(static_cast<size_t>(hs));
      for (int64_t j = 0; j < hs; ++j) bias[static_cast<size_t>(j)] = b[j] + b[hs + j];
      const std::vector<T> xw = cpu::rnn::project_inputs(in, w, hs, bias);
      T* h = y_h.data() + dir * batch * hs;
      const cpu::rnn::Activation& f = attrs_.activation(dir, 0);
      const cpu::rnn::SerialScope serial(cpu::rnn::serial_steps(batch * hs * hs));
      for (int64_t step = 0; step < in.max_length; ++step) {
        cpu::gemm<T>(false, true, batch, hs, hs, h, r, hr.data());
        for (int64_t bi = 0; bi < batch; ++bi) {
          const int64_t len = in.lengths[static_cast<size_t>(bi)];
          if (step >= len) continue;
          const int64_t t = cpu::rnn::time_index(step, len, reverse);
          T* g = hr.data() + bi * hs;
          const T* xt = xw.data() + (t * batch + bi) * hs;
          for (int64_t j = 0; j < hs; ++j) g[j] += xt[j];
          attrs_.clip(g, hs);
          f.apply(g, hs);
          std::copy_n(g, hs, h + bi * hs);
          std::copy_n(g, hs, y.begin() + ((t * d.dirs + dir) * batch + bi) * hs);
        }
      }
    }
    const DType dtype = ctx.input(0).dtype();
    cpu::rnn::write_sequence(ctx, 0, dtype, d, attrs_.batch_major(), y);
    cpu::rnn::write_state(ctx, 1, dtype, d, attrs_.batch_major(), y_h);
  }

  RecurrentAttrs attrs_;
};

}  // namespace

GRAFT_CPU_KERNELS(rnn) {
  reg.add({"",
           "RNN",
           1,
           1 << 30,
           {DType::Float, DType::Double, DType::Float16, DType::BFloat16},
           0,
           make<Rnn>});
}

}  // namespace graft
