// Gradient rules for SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss. Both pick, for each
// sample i (the batch and extra axes), the log-probability p[i, label_i] of its label and give
// loss_i = -w[label_i] * p[i, label_i], zero where label_i == ignore_index; 'reduction' sums them,
// averages them by the total picked weight, or keeps them. Labels get no gradient.
#include <cstdint>
#include <optional>

#include "autodiff/rule.h"
#include "onnx/onnx_pb.h"

namespace graft::autodiff {
namespace {

using Ints = std::vector<int64_t>;

Ints range(int64_t from, int64_t to) {
  Ints r;
  for (int64_t i = from; i < to; ++i) r.push_back(i);
  return r;
}

std::string int_scalar(RuleContext& c, int64_t v) {
  return c.emit1("Reshape", {c.ints_constant({v}), c.ints_constant({})});
}

struct Picks {
  int64_t rank = 0;        // of the scores [N, C, D...]
  std::string one_hot;     // [N, C, D...] in the scores' type, zero rows for ignored samples
  std::string weight;      // w[label_i] (zero when ignored), "" when every weight is 1
  std::string per_sample;  // d loss / d loss_i, broadcastable to [N, 1, D...] (upstream dloss)
};

// `scores` are the node's input 0 (logits or log-probabilities), labels input 1, weights input 2.
Picks pick(RuleContext& c, const std::string& dloss) {
  const std::string &scores = c.input(0), &weights = c.input(2);
  Picks p;
  p.rank = c.static_rank(scores);
  if (p.rank < 2) c.fail("needs the rank of the scores (run shape inference)");
  std::string labels = c.emit1("Cast", {c.input(1)}, {Attr::i("to", onnx::TensorProto::INT64)});
  std::string depth = c.emit1("Gather", {c.emit1("Shape", {scores}), int_scalar(c, 1)});
  std::string classes = c.emit1("Range", {int_scalar(c, 0), depth, int_scalar(c, 1)});
  Ints class_shape(static_cast<size_t>(p.rank), 1);
  class_shape[1] = -1;
  classes = c.emit1("Reshape", {classes, c.ints_constant(class_shape)});
  std::string one = c.ints_constant({1});
  std::string hit = c.emit1("Equal", {c.emit1("Unsqueeze", {labels, one}), classes});
  std::string kept;
  if (c.node().find_attr("ignore_index")) {
    kept =
        c.emit1("Not", {c.emit1("Equal", {labels, int_scalar(c, c.attr_int("ignore_index", 0))})});
    hit = c.emit1("And", {hit, c.emit1("Unsqueeze", {kept, one})});
  }
  std::string one_value = c.scalar_like(1.0, scores), zero_value = c.scalar_like(0.0, scores);
  p.one_hot = c.emit1("Where", {hit, one_value, zero_value});
  if (!weights.empty()) {
    std::string safe = kept.empty() ? labels : c.emit1("Where", {kept, labels, int_scalar(c, 0)});
    p.weight = c.emit1("Gather", {weights, safe});
    if (!kept.empty()) p.weight = c.emit1("Where", {kept, p.weight, c.scalar_like(0.0, weights)});
  } else if (!kept.empty()) {
    p.weight = c.emit1("Where", {kept, one_value, zero_value});
  }
  // The upstream gradient of each sample's loss, divided by the total weight under "mean".
  const std::string reduction = c.attr_string("reduction", "mean");
  p.per_sample = dloss;
  if (reduction == "mean") {
    std::string total = p.weight.empty()
                            ? c.emit1("CastLike", {c.emit1("Size", {labels}), dloss})
                            : c.emit1("ReduceSum", {p.weight}, {Attr::i("keepdims", 0)});
    p.per_sample = c.emit1("Div", {dloss, total});
  }
  if (reduction == "none") p.per_sample = c.emit1("Unsqueeze", {dloss, one});
  return p;
}

// d loss / d p[i, c] = -one_hot[i, c] * w_i * per_sample_i.
std::string log_prob_grad(RuleContext& c, const Picks& p) {
  std::string t = p.per_sample;
  if (!p.weight.empty())
    t = c.emit1("Mul", {t, c.emit1("Unsqueeze", {p.weight, c.ints_constant({1})})});
  return c.emit1("Neg", {c.emit1("Mul", {p.one_hot, t})});
}

// d loss / d w[c] = sum over samples labelled c of -p[i, c] * per_sample_i, less the mean loss
// under "mean" (the total weight divides it).
std::string weight_grad(RuleContext& c, const Picks& p, const std::string& log_prob) {
  std::string picked =
      c.emit1("ReduceSum", {c.emit1("Mul", {p.one_hot, log_prob}), c.ints_constant({1})},
              {Attr::i("keepdims", 1)});
  std::string v = c.emit1("Neg", {picked});
  if (c.attr_string("reduction", "mean") == "mean") v = c.emit1("Sub", {v, c.output(0)});
  std::string t = c.emit1("Mul", {c.emit1("Mul", {p.one_hot, v}), p.per_sample});
  Ints axes = range(2, p.rank);
  axes.insert(axes.begin(), 0);
  return c.emit1("ReduceSum", {t, c.ints_constant(axes)}, {Attr::i("keepdims", 0)});
}

// log_prob = log_softmax(scores, axis 1): d scores = g - softmax * sum(g, axis 1), with g the
// gradient of log_prob (from the loss, plus any reaching the log_prob output).
void softmax_cross_entropy_grad(RuleContext& c) {
  std::string dloss = c.output_grad(0);
  std::string dlog_prob = c.num_outputs() > 1 ? c.output_grad(1) : "";
  if (dloss.empty() && dlog_prob.empty()) return;
  const std::string& scores = c.input(0);
  const bool has_log_prob = c.num_outputs() > 1 && !c.output(1).empty();
  std::string log_prob =
      has_log_prob ? c.output(1) : c.emit1("LogSoftmax", {scores}, {Attr::i("axis", 1)});
  std::string softmax = c.emit1("Exp", {log_prob});
  std::string g = dlog_prob;
  std::optional<Picks> p;
  if (!dloss.empty()) {
    p = pick(c, dloss);
    std::string from_loss = log_prob_grad(c, *p);
    g = g.empty() ? from_loss : c.emit1("Add", {g, from_loss});
    if (c.needs_input_grad(2)) c.set_input_grad(2, weight_grad(c, *p, log_prob));
  }
  if (!c.needs_input_grad(0)) return;
  std::string total = c.emit1("ReduceSum", {g, c.ints_constant({1})}, {Attr::i("keepdims", 1)});
  c.set_input_grad(0, c.emit1("Sub", {g, c.emit1("Mul", {softmax, total})}));
}

void negative_log_likelihood_grad(RuleContext& c) {
  std::string dloss = c.output_grad(0);
  if (dloss.empty()) return;
  const Picks p = pick(c, dloss);
  if (c.needs_input_grad(0)) c.set_input_grad(0, log_prob_grad(c, p));
  if (c.needs_input_grad(2)) c.set_input_grad(2, weight_grad(c, p, c.input(0)));
}

}  // namespace

GRAFT_GRADIENT_RULES(loss) {
  reg.add({"", "SoftmaxCrossEntropyLoss", 12, 1 << 30, &softmax_cross_entropy_grad});
  reg.add({"", "NegativeLogLikelihoodLoss", 12, 1 << 30, &negative_log_likelihood_grad});
}

}  // namespace graft::autodiff
