#include "optim/optimizer.h"

#include <algorithm>

#include "autodiff/gradient_graph.h"
#include "ir/error.h"
#include "onnx/onnx_pb.h"

namespace graft::optim {
namespace {

using autodiff::Attr;
using autodiff::GradientGraph;

// Emits nodes into a graph; each helper returns the output name.
struct Emitter {
  GradientGraph& g;
  std::string base;
  std::string op(const std::string& type, const std::vector<std::string>& in,
                 const std::vector<Attr>& attrs = {}) {
    return g.emit(base, type, in, 1, attrs, "")[0];
  }
  std::string scalar(float v) { return op("Constant", {}, {Attr::f("value_float", v)}); }
  std::string mul(const std::string& a, const std::string& b) { return op("Mul", {a, b}); }
  std::string add(const std::string& a, const std::string& b) { return op("Add", {a, b}); }
  std::string sub(const std::string& a, const std::string& b) { return op("Sub", {a, b}); }
  std::string like(const std::string& v, const std::string& ref) {
    return op("CastLike", {v, ref});
  }
};

std::shared_ptr<onnx::TypeProto> scalar_type(int32_t dtype) {
  auto t = std::make_shared<onnx::TypeProto>();
  t->mutable_tensor_type()->set_elem_type(dtype);
  t->mutable_tensor_type()->mutable_shape();
  return t;
}

std::shared_ptr<onnx::TypeProto> tensor_type(const onnx::TensorProto& t) {
  auto type = std::make_shared<onnx::TypeProto>();
  type->mutable_tensor_type()->set_elem_type(t.data_type());
  auto* shape = type->mutable_tensor_type()->mutable_shape();
  for (int64_t d : t.dims()) shape->add_dim()->set_dim_value(d);
  return type;
}

const char* name_of(Kind k) {
  switch (k) {
    case Kind::SGD:
      return "sgd";
    case Kind::Adam:
      return "adam";
    case Kind::AdamW:
      return "adamw";
    case Kind::Adagrad:
      return "adagrad";
    case Kind::RMSprop:
      return "rmsprop";
    case Kind::LAMB:
      return "lamb";
  }
  return "";
}

}  // namespace

ir::Model add_optimizer(const ir::Model& gradient_model, const std::vector<std::string>& params,
                        const OptimizerConfig& config) {
  ir::Model model = gradient_model.clone();
  ir::Graph& graph = model.graph;
  auto has_output = [&](const std::string& name) {
    return std::any_of(graph.outputs.begin(), graph.outputs.end(),
                       [&](const ir::ValueInfo& v) { return v.name == name; });
  };
  GradientGraph grads(model);
  Emitter e{grads, "optim"};
  const std::string lr = "graft.lr", step = "graft.step";
  graph.inputs.push_back({lr, scalar_type(onnx::TensorProto::FLOAT), ""});
  graph.inputs.push_back({step, scalar_type(onnx::TensorProto::INT64), ""});
  // t = step + 1, as a float, for Adam's bias corrections.
  std::string step_next = e.op(
      "Add",
      {step, e.op("Constant", {}, {Attr::scalar_tensor("value", onnx::TensorProto::INT64, 1)})});
  step_next = e.op("Reshape", {step_next, e.op("Constant", {}, {Attr::ints("value_ints", {})})});
  std::string t = e.op("Cast", {step_next}, {Attr::i("to", onnx::TensorProto::FLOAT)});
  const std::string opt = name_of(config.kind);
  std::vector<ir::ValueInfo> new_outputs;
  // Global-norm clipping (torch.nn.utils.clip_grad_norm_): every gradient is scaled by
  // min(1, max_norm / (||all gradients||_2 + 1e-6)).
  std::string clip;
  if (config.max_grad_norm > 0) {
    std::vector<std::string> squares;
    for (const auto& p : params) {
      std::string g = p + "_grad";
      std::string sq = e.op("ReduceSum", {e.mul(g, g)}, {Attr::i("keepdims", 0)});
      squares.push_back(e.op("Cast", {sq}, {Attr::i("to", onnx::TensorProto::FLOAT)}));
    }
    std::string total = e.op("Sqrt", {squares.size() == 1 ? squares[0] : e.op("Sum", squares)});
    std::string coef = e.op("Div", {e.scalar(config.max_grad_norm), e.add(total, e.scalar(1e-6f))});
    clip = e.op("Min", {coef, e.scalar(1.0f)});
  }
  for (const auto& p : params) {
    const onnx::TensorProto* init = graph.find_initializer(p);
    if (!init) throw InvalidArgument("parameter '" + p + "' is not an initializer");
    if (!has_output(p + "_grad"))
      throw InvalidArgument("the model has no gradient output '" + p + "_grad'");
    if (!graph.is_graph_input(p)) graph.inputs.push_back({p, tensor_type(*init), ""});
    std::string grad = p + "_grad";
    std::string lr_p = e.like(lr, p);
    auto state = [&](const std::string& slot) {
      // State tensors are inputs whose default (an initializer of zeros) is the first step's.
      std::string name = p + "." + opt + "." + slot;
      auto zeros = std::make_shared<onnx::TensorProto>(*init);
      zeros->set_name(name);
      zeros->clear_raw_data();
      zeros->clear_float_data();
      zeros->clear_double_data();
      size_t bytes = 1;
      for (int64_t d : init->dims()) bytes *= static_cast<size_t>(d);
      bytes *= init->data_type() == onnx::TensorProto::DOUBLE ? 8 : 4;
      zeros->set_raw_data(std::string(bytes, '\0'));
      graph.initializers.push_back(zeros);
      graph.inputs.push_back({name, tensor_type(*init), ""});
      return name;
    };
    auto output = [&](const std::string& value, const std::string& name,
                      const onnx::TensorProto& like) {
      ir::Node id;
      id.op_type = "Identity";
      id.name = name + "/Identity";
      id.inputs = {value};
      id.outputs = {name};
      grads.emitted().push_back(std::move(id));
      new_outputs.push_back({name, tensor_type(like), ""});
    };
    std::string g = clip.empty() ? grad : e.mul(grad, e.like(clip, p)), updated;
    if (config.kind == Kind::SGD) {
      if (config.weight_decay != 0)
        g = e.add(g, e.mul(p, e.like(e.scalar(config.weight_decay), p)));
      if (config.momentum != 0) {
        std::string buf = state("momentum");
        // torch: buf = momentum * buf + g (the first step's buf is g: buf starts at zero).
        std::string nbuf = e.add(e.mul(buf, e.like(e.scalar(config.momentum), p)), g);
        output(nbuf, buf + ".new", *init);
        g = config.nesterov ? e.add(g, e.mul(nbuf, e.like(e.scalar(config.momentum), p))) : nbuf;
      }
      updated = e.sub(p, e.mul(lr_p, g));
    } else if (config.kind == Kind::Adagrad) {
      auto k = [&](float x) { return e.like(e.scalar(x), p); };
      if (config.weight_decay != 0) g = e.add(g, e.mul(p, k(config.weight_decay)));
      // clr = lr / (1 + (t - 1) * lr_decay); sum += g^2; p -= clr * g / (sqrt(sum) + eps).
      std::string clr = e.like(
          e.op("Div", {lr, e.add(e.scalar(1.0f),
                                 e.mul(e.sub(t, e.scalar(1.0f)), e.scalar(config.lr_decay)))}),
          p);
      std::string sum = state("sum");
      std::string nsum = e.add(sum, e.mul(g, g));
      output(nsum, sum + ".new", *init);
      updated =
          e.sub(p, e.mul(clr, e.op("Div", {g, e.add(e.op("Sqrt", {nsum}), k(config.epsilon))})));
    } else if (config.kind == Kind::LAMB) {
      // LAMB (You et al. 2019): Adam's bias-corrected direction r = m_hat / (sqrt(v_hat) + eps)
      // + wd * p, scaled by the trust ratio ||p|| / ||r|| (1 when either norm is 0).
      auto k = [&](float x) { return e.like(e.scalar(x), p); };
      std::string m = state("m"), v = state("v");
      std::string nm = e.add(e.mul(m, k(config.beta1)), e.mul(g, k(1.0f - config.beta1)));
      std::string nv = e.add(e.mul(v, k(config.beta2)), e.mul(e.mul(g, g), k(1.0f - config.beta2)));
      output(nm, m + ".new", *init);
      output(nv, v + ".new", *init);
      std::string bc1 = e.like(e.sub(e.scalar(1.0f), e.op("Pow", {e.scalar(config.beta1), t})), p);
      std::string bc2 = e.like(e.sub(e.scalar(1.0f), e.op("Pow", {e.scalar(config.beta2), t})), p);
      std::string r =
          e.op("Div", {e.op("Div", {nm, bc1}),
                       e.add(e.op("Sqrt", {e.op("Div", {nv, bc2})}), k(config.epsilon))});
      if (config.weight_decay != 0) r = e.add(r, e.mul(p, k(config.weight_decay)));
      std::string pn = e.op("ReduceL2", {p}, {Attr::i("keepdims", 0)});
      std::string rn = e.op("ReduceL2", {r}, {Attr::i("keepdims", 0)});
      std::string zero = k(0.0f);
      std::string both = e.op("And", {e.op("Greater", {pn, zero}), e.op("Greater", {rn, zero})});
      std::string trust = e.op("Where", {both, e.op("Div", {pn, rn}), k(1.0f)});
      updated = e.sub(p, e.mul(e.mul(lr_p, trust), r));
    } else if (config.kind == Kind::RMSprop) {
      auto k = [&](float x) { return e.like(e.scalar(x), p); };
      if (config.weight_decay != 0) g = e.add(g, e.mul(p, k(config.weight_decay)));
      // v = alpha v + (1 - alpha) g^2; avg = sqrt(v [- mean_g^2]) + eps; p -= lr * g / avg
      // (through a momentum buffer when momentum > 0), torch's formulas.
      std::string v = state("square_avg");
      std::string nv = e.add(e.mul(v, k(config.alpha)), e.mul(e.mul(g, g), k(1.0f - config.alpha)));
      output(nv, v + ".new", *init);
      std::string var = nv;
      if (config.centered) {
        std::string ga = state("grad_avg");
        std::string nga = e.add(e.mul(ga, k(config.alpha)), e.mul(g, k(1.0f - config.alpha)));
        output(nga, ga + ".new", *init);
        var = e.sub(nv, e.mul(nga, nga));
      }
      std::string scaled = e.op("Div", {g, e.add(e.op("Sqrt", {var}), k(config.epsilon))});
      if (config.momentum != 0) {
        std::string buf = state("momentum");
        std::string nbuf = e.add(e.mul(buf, k(config.momentum)), scaled);
        output(nbuf, buf + ".new", *init);
        scaled = nbuf;
      }
      updated = e.sub(p, e.mul(lr_p, scaled));
    } else {
      std::string base = p;
      if (config.kind == Kind::AdamW && config.weight_decay != 0) {
        // Decoupled decay: p *= 1 - lr * weight_decay, before the Adam step.
        base = e.mul(p, e.sub(e.like(e.scalar(1.0f), p),
                              e.mul(lr_p, e.like(e.scalar(config.weight_decay), p))));
      } else if (config.weight_decay != 0) {
        g = e.add(g, e.mul(p, e.like(e.scalar(config.weight_decay), p)));
      }
      std::string m = state("m"), v = state("v");
      auto k = [&](float x) { return e.like(e.scalar(x), p); };
      std::string nm = e.add(e.mul(m, k(config.beta1)), e.mul(g, k(1.0f - config.beta1)));
      std::string nv = e.add(e.mul(v, k(config.beta2)), e.mul(e.mul(g, g), k(1.0f - config.beta2)));
      output(nm, m + ".new", *init);
      output(nv, v + ".new", *init);
      // p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), torch's arrangement.
      std::string bc1 = e.sub(e.scalar(1.0f), e.op("Pow", {e.scalar(config.beta1), t}));
      std::string bc2 = e.sub(e.scalar(1.0f), e.op("Pow", {e.scalar(config.beta2), t}));
      std::string denom = e.add(e.op("Div", {e.op("Sqrt", {nv}), e.like(e.op("Sqrt", {bc2}), p)}),
                                k(config.epsilon));
      std::string step_size = e.like(e.op("Div", {lr, bc1}), p);
      updated = e.sub(base, e.mul(step_size, e.op("Div", {nm, denom})));
    }
    output(updated, p + ".new", *init);
  }
  ir::Node step_out;
  step_out.op_type = "Identity";
  step_out.name = "graft.step.new/Identity";
  step_out.inputs = {step_next};
  step_out.outputs = {"graft.step.new"};
  grads.emitted().push_back(std::move(step_out));
  new_outputs.push_back({"graft.step.new", scalar_type(onnx::TensorProto::INT64), ""});
  for (auto& n : grads.emitted()) graph.add_node(std::move(n));
  for (auto& o : new_outputs) graph.outputs.push_back(o);
  graph.renumber();
  return model;
}

}  // namespace graft::optim
