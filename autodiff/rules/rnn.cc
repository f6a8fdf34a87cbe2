// Gradient rules for the recurrent ops RNN, GRU and LSTM: backpropagation through time, unrolled
// over a static sequence length. Each direction's forward pass is recomputed step by step with
// standard ops, as the CPU kernels compute it (providers/cpu/rnn), then run backwards. Values are
// kept sequence-major, a step's values as [1, batch, k].
#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/rule.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

using Ints = std::vector<int64_t>;
using Names = std::vector<std::string>;

enum class Cell { Rnn, Gru, Lstm };

// One direction's parameters, split out of the stacked inputs.
struct Direction {
  std::string w, r, wt, rt, bias_x;          // W [G*H, I], R [G*H, H], their transposes
  std::string r_zr, r_h, rt_zr, rt_h, rb_h;  // GRU: R split into (z, r) and h rows
  std::string p_i, p_o, p_f;                 // LSTM peepholes, "" when absent
  bool reverse = false;
};

// The values of one forward step that the backward step reads.
struct Step {
  std::string mask, h_prev, c_prev, h_new, c, i, o, f, g, th, z, r, hh, q, rh;
};

// The gradients of one backward step: of the input projection (gate pre-activations), of the
// recurrent weights as blocks (drec[k]^T hin[k], stacked along the gate axis), of the states.
struct StepGrad {
  std::string dxw, dh_prev, dc_prev, dp;
  Names drec, hin;
};

class Unrolled {
 public:
  Unrolled(RuleContext& c, Cell cell) : c_(c), cell_(cell) {}

  void run();

 private:
  std::string op(const std::string& type, const Names& in, const std::vector<Attr>& attrs = {}) {
    return c_.emit1(type, in, attrs);
  }
  std::string add(const std::string& a, const std::string& b) {
    return a.empty() ? b : b.empty() ? a : op("Add", {a, b});
  }
  std::string sub(const std::string& a, const std::string& b) { return op("Sub", {a, b}); }
  std::string mul(const std::string& a, const std::string& b) { return op("Mul", {a, b}); }
  std::string mm(const std::string& a, const std::string& b) { return op("MatMul", {a, b}); }
  std::string transpose(const std::string& v, const Ints& perm) {
    return op("Transpose", {v}, {Attr::ints("perm", perm)});
  }
  std::string squeeze0(const std::string& v) { return op("Squeeze", {v, c_.ints_constant({0})}); }
  std::string unsqueeze0(const std::string& v) {
    return op("Unsqueeze", {v, c_.ints_constant({0})});
  }
  std::string cat(const Names& vs, int64_t axis) {
    return vs.size() == 1 ? vs[0] : op("Concat", vs, {Attr::i("axis", axis)});
  }
  std::string sum01(const std::string& v) {
    return op("ReduceSum", {v, c_.ints_constant({0, 1})}, {Attr::i("keepdims", 0)});
  }
  Names split(const std::string& v, int64_t axis, const Ints& sizes) {
    if (sizes.size() == 1) return {v};
    return c_.emit("Split", {v, c_.ints_constant(sizes)}, static_cast<int>(sizes.size()),
                   {Attr::i("axis", axis)});
  }
  // The D per-direction parts of a stacked input, without their direction axis.
  Names per_direction(const std::string& v) {
    Names parts = split(v, 0, Ints(static_cast<size_t>(dirs_), 1));
    for (auto& p : parts) p = squeeze0(p);
    return parts;
  }
  // d sigmoid: d * s * (1 - s); d tanh: d * (1 - t^2).
  std::string dsig(const std::string& d, const std::string& s) {
    return mul(d, mul(s, sub(one_, s)));
  }
  std::string dtanh(const std::string& d, const std::string& t) {
    return mul(d, sub(one_, mul(t, t)));
  }
  // [sum_t a_t^T b_t] over stacked [S, B, k] values.
  std::string outer(const std::string& a, const std::string& b) {
    auto flat = [&](const std::string& v) { return op("Flatten", {v}, {Attr::i("axis", 2)}); };
    return op("Gemm", {flat(a), flat(b)}, {Attr::i("transA", 1)});
  }
  std::string reverse_sequence(const std::string& v) {
    return op("ReverseSequence", {v, lens_}, {Attr::i("batch_axis", 1), Attr::i("time_axis", 0)});
  }

  void check_attributes();
  Direction direction(int d, const std::string& w, const std::string& r, const std::string& b,
                      const std::string& p);
  Step forward(const Direction& d, const std::string& xw, const std::string& h_prev,
               const std::string& c_prev, const std::string& mask);
  StepGrad backward(const Direction& d, const Step& s, const std::string& dh, const std::string& dc,
                    bool need_prev);

  RuleContext& c_;
  Cell cell_;
  bool lbr_ = false;  // GRU linear_before_reset
  int64_t seq_ = 0, hidden_ = 0, dirs_ = 1, gates_ = 1;
  std::string one_, lens_;
};

void Unrolled::check_attributes() {
  const Names defaults = cell_ == Cell::Rnn   ? Names{"Tanh"}
                         : cell_ == Cell::Gru ? Names{"Sigmoid", "Tanh"}
                                              : Names{"Sigmoid", "Tanh", "Tanh"};
  gates_ = cell_ == Cell::Rnn ? 1 : cell_ == Cell::Gru ? 3 : 4;
  const std::string direction = c_.attr_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
    c_.fail("unknown direction '" + direction + "'");
  dirs_ = direction == "bidirectional" ? 2 : 1;
  if (const ir::Attribute* a = c_.node().find_attr("activations")) {
    for (int i = 0; i < a->proto->strings_size(); ++i) {
      if (a->proto->strings(i) != defaults[static_cast<size_t>(i) % defaults.size()])
        c_.fail("only the default activations are supported, not " + a->proto->strings(i));
    }
  }
  if (c_.node().find_attr("clip")) c_.fail("clip is not supported");
  if (c_.attr_int("input_forget", 0) != 0) c_.fail("input_forget is not supported");
  lbr_ = c_.attr_int("linear_before_reset", 0) != 0;
  const int64_t layout = c_.attr_int("layout", 0);
  auto x = c_.static_shape(c_.input(0));
  if (!x || (*x)[static_cast<size_t>(layout)] < 0)
    c_.fail("needs a static sequence length (the shape of X)");
  seq_ = (*x)[static_cast<size_t>(layout)];
  hidden_ = c_.attr_int("hidden_size", 0);
  if (hidden_ <= 0) {
    auto r = c_.static_shape(c_.input(2));
    if (!r || (*r)[2] < 0) c_.fail("needs hidden_size or a static shape of R");
    hidden_ = (*r)[2];
  }
}

Direction Unrolled::direction(int index, const std::string& w, const std::string& r,
                              const std::string& b, const std::string& p) {
  Direction d;
  const std::string dir = c_.attr_string("direction", "forward");
  d.reverse = dir == "reverse" || index == 1;
  const int64_t h = hidden_, gh = gates_ * h;
  d.w = w;
  d.r = r;
  d.wt = transpose(w, {1, 0});
  d.rt = transpose(r, {1, 0});
  if (cell_ == Cell::Gru) {
    Names rows = split(r, 0, {2 * h, h}), cols = split(d.rt, 1, {2 * h, h});
    d.r_zr = rows[0], d.r_h = rows[1], d.rt_zr = cols[0], d.rt_h = cols[1];
  }
  if (!b.empty()) {
    Names wr = split(b, 0, {gh, gh});
    if (cell_ == Cell::Gru && lbr_) {
      // Rb_h is added inside the reset gate's product, the other biases to the projection.
      Names rb = split(wr[1], 0, {2 * h, h});
      d.rb_h = rb[1];
      d.bias_x = add(wr[0], cat({rb[0], sub(rb[1], rb[1])}, 0));
    } else {
      d.bias_x = add(wr[0], wr[1]);
    }
  }
  if (!p.empty()) {
    Names ps = split(p, 0, {h, h, h});
    d.p_i = ps[0], d.p_o = ps[1], d.p_f = ps[2];
  }
  return d;
}

Step Unrolled::forward(const Direction& d, const std::string& xw, const std::string& h_prev,
                       const std::string& c_prev, const std::string& mask) {
  Step s;
  s.mask = mask, s.h_prev = h_prev, s.c_prev = c_prev;
  const int64_t h = hidden_;
  switch (cell_) {
    case Cell::Rnn:  // H' = tanh(x W^T + H R^T + Wb + Rb)
      s.h_new = op("Tanh", {add(xw, mm(h_prev, d.rt))});
      break;
    case Cell::Gru: {
      Names x = split(xw, 2, {2 * h, h});
      Names zr = split(op("Sigmoid", {add(x[0], mm(h_prev, d.rt_zr))}), 2, {h, h});
      s.z = zr[0], s.r = zr[1];
      if (lbr_) {
        s.q = add(mm(h_prev, d.rt_h), d.rb_h);
        s.hh = op("Tanh", {add(x[1], mul(s.r, s.q))});
      } else {
        s.rh = mul(s.r, h_prev);
        s.hh = op("Tanh", {add(x[1], mm(s.rh, d.rt_h))});
      }
      s.h_new = add(s.hh, mul(s.z, sub(h_prev, s.hh)));  // (1 - z) hh + z H
      break;
    }
    case Cell::Lstm: {
      Names g = split(add(xw, mm(h_prev, d.rt)), 2, {h, h, h, h});  // i, o, f, c
      std::string pi = g[0], pf = g[2];
      if (!d.p_i.empty()) pi = add(pi, mul(d.p_i, c_prev)), pf = add(pf, mul(d.p_f, c_prev));
      s.i = op("Sigmoid", {pi});
      s.f = op("Sigmoid", {pf});
      s.g = op("Tanh", {g[3]});
      s.c = add(mul(s.f, c_prev), mul(s.i, s.g));
      std::string po = g[1];
      if (!d.p_o.empty()) po = add(po, mul(d.p_o, s.c));
      s.o = op("Sigmoid", {po});
      s.th = op("Tanh", {s.c});
      s.h_new = mul(s.o, s.th);
      break;
    }
  }
  return s;
}

// Backpropagates dh (into H') and dc (into C') through one cell.
StepGrad Unrolled::backward(const Direction& d, const Step& s, const std::string& dh,
                            const std::string& dc_in, bool need_prev) {
  StepGrad g;
  switch (cell_) {
    case Cell::Rnn:
      g.dxw = dtanh(dh, s.h_new);
      g.drec = {g.dxw}, g.hin = {s.h_prev};
      if (need_prev) g.dh_prev = mm(g.dxw, d.r);
      break;
    case Cell::Gru: {
      const std::string da_h = dtanh(mul(dh, sub(one_, s.z)), s.hh);
      const std::string dz = dsig(mul(dh, sub(s.h_prev, s.hh)), s.z);
      std::string dr, dq;
      if (lbr_) {
        dr = dsig(mul(da_h, s.q), s.r);
        dq = mul(da_h, s.r);
      } else {
        const std::string drh = mm(da_h, d.r_h);
        dr = dsig(mul(drh, s.h_prev), s.r);
        if (need_prev) g.dh_prev = mul(drh, s.r);
      }
      const std::string dzr = cat({dz, dr}, 2);
      g.dxw = cat({dzr, da_h}, 2);
      if (lbr_)
        g.drec = {cat({dzr, dq}, 2)}, g.hin = {s.h_prev};
      else
        g.drec = {dzr, da_h}, g.hin = {s.h_prev, s.rh};
      if (need_prev) {
        g.dh_prev = add(g.dh_prev, add(mul(dh, s.z), mm(dzr, d.r_zr)));
        if (lbr_) g.dh_prev = add(g.dh_prev, mm(dq, d.r_h));
      }
      break;
    }
    case Cell::Lstm: {
      std::string dc = add(dc_in, dtanh(mul(dh, s.o), s.th));
      const std::string da_o = dsig(mul(dh, s.th), s.o);
      if (!d.p_o.empty()) dc = add(dc, mul(da_o, d.p_o));
      const std::string da_i = dsig(mul(dc, s.g), s.i);
      const std::string da_f = dsig(mul(dc, s.c_prev), s.f);
      const std::string da_c = dtanh(mul(dc, s.i), s.g);
      g.dxw = cat({da_i, da_o, da_f, da_c}, 2);
      g.drec = {g.dxw}, g.hin = {s.h_prev};
      if (!d.p_i.empty()) g.dp = cat({mul(da_i, s.c_prev), mul(da_o, s.c), mul(da_f, s.c_prev)}, 2);
      if (need_prev) {
        g.dh_prev = mm(g.dxw, d.r);
        g.dc_prev = mul(dc, s.f);
        if (!d.p_i.empty()) g.dc_prev = add(g.dc_prev, add(mul(da_i, d.p_i), mul(da_f, d.p_f)));
      }
      break;
    }
  }
  return g;
}

void Unrolled::run() {
  const bool lstm = cell_ == Cell::Lstm;
  auto grad_of = [&](int i) { return i < c_.num_outputs() ? c_.output_grad(i) : std::string(); };
  const std::string dy = grad_of(0), dy_h = grad_of(1), dy_c = lstm ? grad_of(2) : "";
  if (dy.empty() && dy_h.empty() && dy_c.empty()) return;
  check_attributes();
  const bool batch_major = c_.attr_int("layout", 0) != 0;
  const std::string& x_in = c_.input(0);
  auto seq_major = [&](const std::string& v, const Ints& perm) {
    return v.empty() || !batch_major ? v : transpose(v, perm);
  };
  one_ = c_.scalar_like(1.0, x_in);
  const std::string x = seq_major(x_in, {1, 0, 2});
  if (!c_.input(4).empty()) lens_ = op("Cast", {c_.input(4)}, {Attr::i("to", 7)});
  // Zeros shaped like a state [1, B, H], for absent initial states and output gradients.
  const std::string zeros = op(
      "Expand", {c_.scalar_like(0.0, x_in),
                 cat({c_.ints_constant({1}),
                      op("Slice", {op("Shape", {x}), c_.ints_constant({1}), c_.ints_constant({2})}),
                      c_.ints_constant({hidden_})},
                     0)});
  auto states = [&](const std::string& v) {
    return v.empty() ? Names(static_cast<size_t>(dirs_), zeros)
                     : split(seq_major(v, {1, 0, 2}), 0, Ints(static_cast<size_t>(dirs_), 1));
  };
  const Names ws = per_direction(c_.input(1)), rs = per_direction(c_.input(2)),
              h0 = states(c_.input(5)), c0 = states(c_.input(6)), dhs = states(dy_h),
              dcs = states(dy_c);
  const Names bs = c_.input(3).empty() ? Names(2, "") : per_direction(c_.input(3));
  const Names ps = c_.input(7).empty() ? Names(2, "") : per_direction(c_.input(7));
  Names dys(2);
  if (!dy.empty()) {
    Names parts = split(seq_major(dy, {1, 2, 0, 3}), 1, Ints(static_cast<size_t>(dirs_), 1));
    for (int k = 0; k < dirs_; ++k)
      dys[k] = op("Squeeze", {parts[static_cast<size_t>(k)], c_.ints_constant({1})});
  }
  const Ints ones(static_cast<size_t>(seq_), 1);
  std::string dx;
  Names dw, dr, db, dp, dh0, dc0;
  for (int k = 0; k < dirs_; ++k) {
    const Direction d = direction(k, ws[k], rs[k], bs[k], ps[k]);
    // With sequence lengths, a reverse direction runs forwards over each reversed sequence.
    const bool flip = d.reverse && !lens_.empty();
    auto time = [&](int64_t step) { return d.reverse && !flip ? seq_ - 1 - step : step; };
    const std::string xd = flip ? reverse_sequence(x) : x;
    const Names xw = split(add(mm(xd, d.wt), d.bias_x), 0, ones);
    Names dy_t(static_cast<size_t>(seq_));
    if (!dys[k].empty()) dy_t = split(flip ? reverse_sequence(dys[k]) : dys[k], 0, ones);
    std::vector<Step> steps;
    std::string h = h0[k], cs = c0[k];
    for (int64_t s = 0; s < seq_; ++s) {
      std::string mask;
      if (!lens_.empty()) {
        mask = op("Less", {c_.ints_constant({s}), lens_});
        mask = op("CastLike", {op("Unsqueeze", {mask, c_.ints_constant({0, 2})}), x_in});
      }
      steps.push_back(forward(d, xw[static_cast<size_t>(time(s))], h, cs, mask));
      const Step& st = steps.back();
      // Past a sequence's end its state is held: H = H_prev + m (H' - H_prev).
      h = mask.empty() ? st.h_new : add(h, mul(mask, sub(st.h_new, h)));
      if (lstm) cs = mask.empty() ? st.c : add(cs, mul(mask, sub(st.c, cs)));
    }
    const bool need_h0 = c_.needs_input_grad(5), need_c0 = lstm && c_.needs_input_grad(6);
    std::string dh = dhs[k], dc = lstm ? dcs[k] : "";
    Names dxw(static_cast<size_t>(seq_)), dpk;
    std::vector<Names> drec, hin;
    for (int64_t s = seq_ - 1; s >= 0; --s) {
      const Step& st = steps[static_cast<size_t>(s)];
      const int64_t t = time(s);
      std::string dh_new = add(dh, dy_t[static_cast<size_t>(t)]), dc_new = dc, keep_h, keep_c;
      if (!st.mask.empty()) {
        const std::string held = sub(one_, st.mask);
        dh_new = mul(st.mask, dh_new);
        keep_h = mul(held, dh);
        if (lstm) dc_new = mul(st.mask, dc), keep_c = mul(held, dc);
      }
      const StepGrad g = backward(d, st, dh_new, dc_new, s > 0 || need_h0 || need_c0);
      dh = add(g.dh_prev, keep_h);
      dc = add(g.dc_prev, keep_c);
      dxw[static_cast<size_t>(t)] = g.dxw;
      drec.push_back(g.drec);
      hin.push_back(g.hin);
      if (!g.dp.empty()) dpk.push_back(g.dp);
    }
    const std::string dxw_all = cat(dxw, 0);  // [S, B, G*H], in time order
    if (c_.needs_input_grad(0)) {
      std::string dxk = mm(dxw_all, d.w);
      dx = add(dx, flip ? reverse_sequence(dxk) : dxk);
    }
    if (c_.needs_input_grad(1)) dw.push_back(unsqueeze0(outer(dxw_all, xd)));
    Names dr_blocks, drb_blocks;
    for (size_t j = 0; j < drec[0].size(); ++j) {
      if (!c_.needs_input_grad(2) && !c_.needs_input_grad(3)) break;
      Names a, b;
      for (size_t s = 0; s < drec.size(); ++s) a.push_back(drec[s][j]), b.push_back(hin[s][j]);
      const std::string stacked = cat(a, 0);
      if (c_.needs_input_grad(2)) dr_blocks.push_back(outer(stacked, cat(b, 0)));
      if (c_.needs_input_grad(3)) drb_blocks.push_back(sum01(stacked));
    }
    if (c_.needs_input_grad(2)) dr.push_back(unsqueeze0(cat(dr_blocks, 0)));
    if (c_.needs_input_grad(3))
      db.push_back(unsqueeze0(cat({sum01(dxw_all), cat(drb_blocks, 0)}, 0)));
    if (!dpk.empty() && c_.needs_input_grad(7)) dp.push_back(unsqueeze0(sum01(cat(dpk, 0))));
    dh0.push_back(dh);
    dc0.push_back(dc);
  }
  auto set = [&](int i, const Names& parts, const Ints& perm) {
    if (!c_.needs_input_grad(i) || parts.empty() || parts[0].empty()) return;
    const std::string v = cat(parts, 0);
    c_.set_input_grad(i, batch_major && !perm.empty() ? transpose(v, perm) : v);
  };
  set(0, {dx}, {1, 0, 2});
  set(1, dw, {});
  set(2, dr, {});
  set(3, db, {});
  set(5, dh0, {1, 0, 2});
  if (lstm) {
    set(6, dc0, {1, 0, 2});
    set(7, dp, {});
  }
}

void rnn_grad(RuleContext& c) { Unrolled(c, Cell::Rnn).run(); }
void gru_grad(RuleContext& c) { Unrolled(c, Cell::Gru).run(); }
void lstm_grad(RuleContext& c) { Unrolled(c, Cell::Lstm).run(); }

}  // namespace

GRAFT_GRADIENT_RULES(rnn) {
  reg.add({"", "RNN", 14, 1 << 30, &rnn_grad});
  reg.add({"", "GRU", 14, 1 << 30, &gru_grad});
  reg.add({"", "LSTM", 14, 1 << 30, &lstm_grad});
}

}  // namespace graft::autodiff
