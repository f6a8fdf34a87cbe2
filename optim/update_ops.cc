#include "optim/update_ops.h"

#include <functional>
#include <map>

#include "autodiff/gradient_graph.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft::optim {
namespace {

using autodiff::Attr;

onnx::AttributeProto int_attr(const std::string& name, int64_t value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto float_attr(const std::string& name, float value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
  return a;
}

// Builds a function body node by node; each helper returns the name of the value it makes.
class Body {
 public:
  explicit Body(onnx::FunctionProto& f) : f_(f) {}

  std::string op(const std::string& type, const std::vector<std::string>& inputs,
                 const std::vector<onnx::AttributeProto>& attrs = {}, std::string output = "") {
    onnx::NodeProto* n = f_.add_node();
    n->set_op_type(type);
    for (const auto& i : inputs) n->add_input(i);
    if (output.empty()) output = "tmp_" + std::to_string(counter_++);
    n->add_output(output);
    for (const auto& a : attrs) *n->add_attribute() = a;
    return output;
  }
  std::string add(const std::string& a, const std::string& b) { return op("Add", {a, b}); }
  std::string sub(const std::string& a, const std::string& b) { return op("Sub", {a, b}); }
  std::string mul(const std::string& a, const std::string& b) { return op("Mul", {a, b}); }
  std::string div(const std::string& a, const std::string& b) { return op("Div", {a, b}); }
  std::string like(const std::string& v, const std::string& ref) {
    return op("CastLike", {v, ref});
  }
  // The float attribute `name` of the calling node, as a scalar.
  std::string attr(const std::string& name) {
    auto it = refs_.find(name);
    if (it != refs_.end()) return it->second;
    onnx::AttributeProto a;
    a.set_name("value_float");
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_ref_attr_name(name);
    return refs_[name] = op("Constant", {}, {a});
  }
  // The int attribute `name` of the calling node, as a boolean scalar.
  std::string flag(const std::string& name) {
    onnx::AttributeProto a;
    a.set_name("value_int");
    a.set_type(onnx::AttributeProto::INT);
    a.set_ref_attr_name(name);
    return op("Cast", {op("Constant", {}, {a})}, {int_attr("to", onnx::TensorProto::BOOL)});
  }
  std::string literal(float v) {
    return once("float " + std::to_string(v),
                [&] { return op("Constant", {}, {float_attr("value_float", v)}); });
  }
  std::string int_literal(int64_t v) {
    return once("int " + std::to_string(v),
                [&] { return op("Constant", {}, {int_attr("value_int", v)}); });
  }
  // A value every tensor's update shares (a bias correction), made the first time it is asked.
  std::string once(const std::string& key, const std::function<std::string()>& make) {
    auto it = shared_.find(key);
    if (it != shared_.end()) return it->second;
    std::string v = make();
    return shared_[key] = v;
  }

 private:
  onnx::FunctionProto& f_;
  int counter_ = 0;
  std::map<std::string, std::string> refs_;
  std::map<std::string, std::string> shared_;
};

std::string param(size_t i) { return "X_" + std::to_string(i); }
std::string grad(size_t i) { return "G_" + std::to_string(i); }
std::string slot(const std::string& s, size_t i) { return s + "_" + std::to_string(i); }
std::string updated(const std::string& v) { return v + "_new"; }

// One tensor's update: its parameter, and scalars cast to its type.
struct PerTensor {
  Body& b;
  std::string x;
  std::string c(const std::string& scalar) { return b.like(scalar, x); }
  std::string attr(const std::string& name) { return c(b.attr(name)); }
  // decay * s + (1 - decay) * v (torch's running average, `decay` an attribute) into `output`.
  std::string average(const std::string& s, const std::string& v, const std::string& decay,
                      const std::string& output) {
    std::string rest =
        b.once("1 - " + decay, [&] { return b.sub(b.literal(1.0f), b.attr(decay)); });
    return b.op("Add", {b.mul(s, attr(decay)), b.mul(v, c(rest))}, {}, output);
  }
  // 1 - beta^t, the bias correction of the running average with attribute `beta`.
  std::string correction(const std::string& beta, const std::string& t) {
    return b.once("1 - " + beta + "^t", [&] {
      return b.sub(b.literal(1.0f), b.op("Pow", {b.attr(beta), t}));
    });
  }
};

bool has_slot(const UpdateOp& op, const std::string& name) {
  for (const auto& s : op.slots) {
    if (s == name) return true;
  }
  return false;
}

// Writes the update of tensor i (its gradient `g` already clipped) into `b`; `t` is the step
// number (1 on the first update) as a float.
void update_body(Body& b, const UpdateOp& op, size_t i, std::string g, const std::string& t) {
  PerTensor x{b, param(i)};
  const std::string lr = x.c("lr"), out = updated(param(i));
  auto state = [&](const std::string& s) { return slot(s, i); };
  auto next = [&](const std::string& s) { return updated(slot(s, i)); };
  if (op.kind == Kind::SGD) {
    g = b.add(g, b.mul(x.x, x.attr("weight_decay")));
    if (has_slot(op, "momentum")) {
      // torch: buf = g on the first update, then momentum * buf + (1 - dampening) * g.
      std::string damp =
          b.once("1 - dampening", [&] { return b.sub(b.literal(1.0f), b.attr("dampening")); });
      std::string blend = b.add(b.mul(state("momentum"), x.attr("momentum")), b.mul(g, x.c(damp)));
      std::string first = b.once("first", [&] {
        return b.op("Equal", {"step", b.int_literal(0)});
      });
      std::string buf = b.op("Where", {first, g, blend}, {}, next("momentum"));
      std::string nesterov = b.once("nesterov", [&] { return b.flag("nesterov"); });
      g = b.op("Where", {nesterov, b.add(g, b.mul(buf, x.attr("momentum"))), buf});
    }
    b.op("Sub", {x.x, b.mul(lr, g)}, {}, out);
  } else if (op.kind == Kind::Adam) {
    // Decoupled (AdamW): p *= 1 - lr * weight_decay first; otherwise L2 through the gradient.
    std::string decoupled = b.once("decoupled", [&] { return b.flag("decoupled_weight_decay"); });
    std::string wd = x.attr("weight_decay");
    std::string base =
        b.op("Where", {decoupled, b.mul(x.x, b.sub(x.c(b.literal(1.0f)), b.mul(lr, wd))), x.x});
    g = b.op("Where", {decoupled, g, b.add(g, b.mul(x.x, wd))});
    std::string m = x.average(state("m"), g, "beta1", next("m"));
    std::string v = x.average(state("v"), b.mul(g, g), "beta2", next("v"));
    // p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), torch's arrangement.
    std::string step_size =
        b.once("step size", [&] { return b.div("lr", x.correction("beta1", t)); });
    std::string root = b.once("sqrt bc2", [&] { return b.op("Sqrt", {x.correction("beta2", t)}); });
    std::string denom = b.add(b.div(b.op("Sqrt", {v}), x.c(root)), x.attr("epsilon"));
    b.op("Sub", {base, b.mul(x.c(step_size), b.div(m, denom))}, {}, out);
  } else if (op.kind == Kind::Adagrad) {
    g = b.add(g, b.mul(x.x, x.attr("weight_decay")));
    // clr = lr / (1 + (t - 1) * lr_decay); sum += g^2; p -= clr * g / (sqrt(sum) + eps).
    std::string clr = b.once("clr", [&] {
      return b.div("lr",
                   b.add(b.literal(1.0f), b.mul(b.sub(t, b.literal(1.0f)), b.attr("lr_decay"))));
    });
    std::string sum = b.op("Add", {state("sum"), b.mul(g, g)}, {}, next("sum"));
    b.op("Sub", {x.x, b.mul(x.c(clr), b.div(g, b.add(b.op("Sqrt", {sum}), x.attr("epsilon"))))}, {},
         out);
  } else if (op.kind == Kind::RMSprop) {
    g = b.add(g, b.mul(x.x, x.attr("weight_decay")));
    // v = alpha v + (1 - alpha) g^2; p -= lr * g / (sqrt(v [- mean_g^2]) + eps), through a
    // momentum buffer when there is one.
    std::string var = x.average(state("square_avg"), b.mul(g, g), "alpha", next("square_avg"));
    if (has_slot(op, "grad_avg")) {
      std::string mean = x.average(state("grad_avg"), g, "alpha", next("grad_avg"));
      var = b.sub(var, b.mul(mean, mean));
    }
    std::string scaled = b.div(g, b.add(b.op("Sqrt", {var}), x.attr("epsilon")));
    if (has_slot(op, "momentum")) {
      scaled =
          b.op("Add", {b.mul(state("momentum"), x.attr("momentum")), scaled}, {}, next("momentum"));
    }
    b.op("Sub", {x.x, b.mul(lr, scaled)}, {}, out);
  } else if (op.kind == Kind::LAMB) {
    // r = m_hat / (sqrt(v_hat) + eps) + wd * p, scaled by the trust ratio ||p|| / ||r|| (1 when
    // either norm is 0).
    std::string m = x.average(state("m"), g, "beta1", next("m"));
    std::string v = x.average(state("v"), b.mul(g, g), "beta2", next("v"));
    std::string m_hat = b.div(m, x.c(x.correction("beta1", t)));
    std::string v_hat = b.div(v, x.c(x.correction("beta2", t)));
    std::string r = b.add(b.div(m_hat, b.add(b.op("Sqrt", {v_hat}), x.attr("epsilon"))),
                          b.mul(x.x, x.attr("weight_decay")));
    std::string pn = b.op("ReduceL2", {x.x}, {int_attr("keepdims", 0)});
    std::string rn = b.op("ReduceL2", {r}, {int_attr("keepdims", 0)});
    std::string zero = x.c(b.literal(0.0f));
    std::string both = b.op("And", {b.op("Greater", {pn, zero}), b.op("Greater", {rn, zero})});
    std::string trust = b.op("Where", {both, b.div(pn, rn), x.c(b.literal(1.0f))});
    b.op("Sub", {x.x, b.mul(b.mul(lr, trust), r)}, {}, out);
  }
}

const char* op_type_of(Kind kind) {
  switch (kind) {
    case Kind::SGD:
      return "SGDUpdate";
    case Kind::Adam:
    case Kind::AdamW:
      return "AdamUpdate";
    case Kind::Adagrad:
      return "AdagradUpdate";
    case Kind::RMSprop:
      return "RMSpropUpdate";
    case Kind::LAMB:
      return "LAMBUpdate";
  }
  return "";
}

}  // namespace

UpdateOp update_op(const OptimizerConfig& config) {
  UpdateOp op;
  op.kind = config.kind == Kind::AdamW ? Kind::Adam : config.kind;
  op.op_type = op_type_of(config.kind);
  auto& a = op.attrs;
  switch (config.kind) {
    case Kind::SGD:
      if (config.momentum != 0) op.slots = {"momentum"};
      a = {Attr::f("momentum", config.momentum), Attr::f("dampening", config.dampening),
           Attr::i("nesterov", config.nesterov ? 1 : 0)};
      break;
    case Kind::Adam:
    case Kind::AdamW:
      op.slots = {"m", "v"};
      a = {Attr::f("beta1", config.beta1), Attr::f("beta2", config.beta2),
           Attr::f("epsilon", config.epsilon),
           Attr::i("decoupled_weight_decay", config.kind == Kind::AdamW ? 1 : 0)};
      break;
    case Kind::Adagrad:
      op.slots = {"sum"};
      a = {Attr::f("lr_decay", config.lr_decay), Attr::f("epsilon", config.epsilon)};
      break;
    case Kind::RMSprop:
      op.slots = {"square_avg"};
      if (config.centered) op.slots.push_back("grad_avg");
      if (config.momentum != 0) op.slots.push_back("momentum");
      a = {Attr::f("alpha", config.alpha), Attr::f("epsilon", config.epsilon),
           Attr::f("momentum", config.momentum), Attr::i("centered", config.centered ? 1 : 0)};
      break;
    case Kind::LAMB:
      op.slots = {"m", "v"};
      a = {Attr::f("beta1", config.beta1), Attr::f("beta2", config.beta2),
           Attr::f("epsilon", config.epsilon)};
      break;
  }
  a.push_back(Attr::f("weight_decay", config.weight_decay));
  a.push_back(Attr::f("max_grad_norm", config.max_grad_norm));
  return op;
}

std::shared_ptr<onnx::FunctionProto> update_function(const UpdateOp& op, size_t n, int64_t opset) {
  auto f = std::make_shared<onnx::FunctionProto>();
  f->set_name(op.op_type);
  f->set_domain(names::kDomain);
  f->set_doc_string("graft's fused " + op.op_type + " for " + std::to_string(n) +
                    " tensors (optim/update_ops.h), written with standard ops.");
  auto* imp = f->add_opset_import();
  imp->set_domain("");
  imp->set_version(opset);
  f->add_input("lr");
  f->add_input("step");
  for (size_t i = 0; i < n; ++i) f->add_input(param(i));
  for (size_t i = 0; i < n; ++i) f->add_input(grad(i));
  for (const auto& s : op.slots) {
    for (size_t i = 0; i < n; ++i) f->add_input(slot(s, i));
  }
  for (size_t i = 0; i < n; ++i) f->add_output(updated(param(i)));
  for (const auto& s : op.slots) {
    for (size_t i = 0; i < n; ++i) f->add_output(updated(slot(s, i)));
  }
  // Declared defaults are torch.optim's; graft always writes every attribute on the node.
  OptimizerConfig defaults;
  defaults.kind = op.kind;
  for (const auto& a : update_op(defaults).attrs) *f->add_attribute_proto() = *a.proto;

  Body b(*f);
  std::string t =
      b.op("Cast", {b.add("step", b.int_literal(1))}, {int_attr("to", onnx::TensorProto::FLOAT)});
  // Global-norm clipping: every gradient times min(1, max_norm / (||G||_2 + 1e-6)) when
  // max_grad_norm > 0.
  std::vector<std::string> squares;
  for (size_t i = 0; i < n; ++i) {
    std::string sq = b.op("ReduceSum", {b.mul(grad(i), grad(i))}, {int_attr("keepdims", 0)});
    squares.push_back(b.op("Cast", {sq}, {int_attr("to", onnx::TensorProto::FLOAT)}));
  }
  std::string total = b.op("Sqrt", {b.op("Sum", squares)});
  std::string max_norm = b.attr("max_grad_norm");
  std::string coef =
      b.op("Min", {b.div(max_norm, b.add(total, b.literal(1e-6f))), b.literal(1.0f)});
  coef = b.op("Where", {b.op("Greater", {max_norm, b.literal(0.0f)}), coef, b.literal(1.0f)});
  for (size_t i = 0; i < n; ++i) update_body(b, op, i, b.mul(grad(i), b.like(coef, grad(i))), t);
  return f;
}

}  // namespace graft::optim
