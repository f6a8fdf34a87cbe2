#include "ir/transforms/inline_functions.h"

#include <unordered_map>

#include "ir/error.h"
#include "ir/schema.h"
#include "ir/serialize.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

struct Inliner {
  Model& model;
  const KeepNode& keep;
  int counter = 0;
  // Default attribute values of the function being expanded.
  std::unordered_map<std::string, onnx::AttributeProto> defaults;

  const onnx::FunctionProto* local_function(const Node& n) const {
    for (const auto& f : model.functions) {
      if (f->name() == n.op_type && canonical_domain(f->domain()) == n.domain) return f.get();
    }
    return nullptr;
  }

  // The function body to inline for `n`, or false when the node stays.
  bool body_for(const Node& n, const Graph& graph, onnx::FunctionProto* body) {
    defaults.clear();
    if (const auto* f = local_function(n)) {
      // A model-local function runs as a kernel when one exists (graft's fused ops).
      if (keep(n, static_cast<int>(model.opset(n.domain)))) return false;
      *body = *f;
      for (const auto& a : f->attribute_proto()) defaults[a.name()] = a;
      return true;
    }
    int64_t opset = model.opset(n.domain);
    const onnx::OpSchema* schema = find_schema(n.domain, n.op_type, opset);
    if (!schema) return false;
    if (keep(n, schema->SinceVersion())) return false;
    for (const auto& [name, attr] : schema->attributes()) {
      if (attr.default_value.type() != onnx::AttributeProto::UNDEFINED)
        defaults[name] = attr.default_value;
    }
    if (schema->HasFunction()) {
      const onnx::FunctionProto* f = schema->GetFunction(static_cast<int>(opset));
      if (!f) return false;
      *body = *f;
      return true;
    }
    if (schema->HasContextDependentFunction()) {
      onnx::NodeProto np;
      np.set_op_type(n.op_type);
      np.set_domain(n.domain);
      for (const auto& i : n.inputs) np.add_input(i);
      for (const auto& o : n.outputs) np.add_output(o);
      for (const auto& a : n.attributes) *np.add_attribute() = *a.proto;
      std::vector<onnx::TypeProto> types;
      for (const auto& i : n.inputs) {
        const onnx::TypeProto* t = i.empty() ? nullptr : graph.type_of(i);
        if (!t) {
          if (const auto* init = graph.find_initializer(i)) {
            onnx::TypeProto tp;
            tp.mutable_tensor_type()->set_elem_type(init->data_type());
            types.push_back(tp);
            continue;
          }
        }
        types.push_back(t ? *t : onnx::TypeProto());
      }
      onnx::FunctionBodyBuildContextImpl ctx(np, types);
      if (!schema->BuildContextDependentFunction(ctx, *body, static_cast<int>(opset))) return false;
      return true;
    }
    return false;
  }

  // Rewrites `body` for the call `call` into nodes with unique value names.
  std::vector<Node> expand(const Node& call, const onnx::FunctionProto& body) {
    std::string prefix =
        (call.name.empty() ? call.op_type : call.name) + "/" + std::to_string(counter++) + "/";
    std::unordered_map<std::string, std::string> rename;
    for (int i = 0; i < body.input_size(); ++i) {
      rename[body.input(i)] =
          static_cast<size_t>(i) < call.inputs.size() ? call.inputs[static_cast<size_t>(i)] : "";
    }
    for (int i = 0; i < body.output_size(); ++i) {
      rename[body.output(i)] =
          static_cast<size_t>(i) < call.outputs.size() ? call.outputs[static_cast<size_t>(i)] : "";
    }
    auto map_name = [&](const std::string& v) -> std::string {
      if (v.empty()) return v;
      auto it = rename.find(v);
      if (it != rename.end()) return it->second;
      return rename[v] = prefix + v;
    };
    std::vector<Node> out;
    for (const auto& np_const : body.node()) {
      onnx::NodeProto np = np_const;
      // Attribute references take the caller's value, then the function's default.
      google::protobuf::RepeatedPtrField<onnx::AttributeProto> attrs;
      for (const auto& a : np.attribute()) {
        if (a.ref_attr_name().empty()) {
          *attrs.Add() = a;
          continue;
        }
        const Attribute* given = call.find_attr(a.ref_attr_name());
        onnx::AttributeProto value;
        if (given) {
          value = *given->proto;
        } else if (defaults.count(a.ref_attr_name())) {
          value = defaults[a.ref_attr_name()];
        } else {
          continue;
        }
        value.set_name(a.name());
        *attrs.Add() = value;
      }
      np.mutable_attribute()->Swap(&attrs);
      Node n = node_from_proto(np);
      // Caller-supplied graph attributes keep their ir::Graph form.
      for (auto& a : n.attributes) {
        for (const auto& src : np_const.attribute()) {
          if (src.name() == a.name && !src.ref_attr_name().empty()) {
            if (const Attribute* given = call.find_attr(src.ref_attr_name()))
              a.graphs = given->graphs;
          }
        }
      }
      for (auto& i : n.inputs) i = map_name(i);
      for (auto& o : n.outputs) o = map_name(o);
      // Nested graphs may read function values from their outer scope.
      for (auto& a : n.attributes) {
        for (auto& g : a.graphs) {
          for (const auto& fv : g->free_variables()) {
            std::string mapped = map_name(fv);
            if (mapped != fv) g->replace_uses(fv, mapped);
          }
        }
      }
      if (n.name.empty()) n.name = prefix + n.op_type;
      out.push_back(std::move(n));
    }
    for (const auto& imp : body.opset_import()) {
      std::string d = canonical_domain(imp.domain());
      if (!model.opset_imports.count(d)) model.opset_imports[d] = imp.version();
    }
    return out;
  }

  void run(Graph& graph, int depth) {
    if (depth > 64)
      throw InvalidArgument("function inlining did not terminate (recursive functions?)");
    bool changed = true;
    int rounds = 0;
    while (changed) {
      changed = false;
      if (++rounds > 64)
        throw InvalidArgument("function inlining did not terminate in graph '" + graph.name + "'");
      for (size_t i = 0; i < graph.nodes.size(); ++i) {
        Node& n = *graph.nodes[i];
        for (auto& a : n.attributes) {
          for (auto& g : a.graphs) run(*g, depth + 1);
        }
        onnx::FunctionProto body;
        bool inline_it;
        try {
          inline_it = body_for(n, graph, &body);
        } catch (const std::exception& e) {
          throw InvalidArgument(n.describe() + ": cannot build its function body: " + e.what());
        }
        if (!inline_it) continue;
        std::vector<Node> expanded = expand(n, body);
        graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
        for (size_t k = 0; k < expanded.size(); ++k)
          graph.insert_node(i + k, std::move(expanded[k]));
        i += expanded.size();
        --i;
        changed = true;
      }
      // Bodies built from types (context-dependent functions) need the new values' types.
      if (changed && depth == 0) infer_shapes(model);
    }
    graph.renumber();
  }
};

}  // namespace

void inline_functions(Model& model, const KeepNode& keep) {
  Inliner inliner{model, keep, 0, {}};
  inliner.run(model.graph, 0);
}

}  // namespace graft::ir
