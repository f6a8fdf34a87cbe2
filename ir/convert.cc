// ONNX protobuf <-> ir::Model.
#include "ir/error.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

ValueInfo value_info_from(const onnx::ValueInfoProto& p) {
  ValueInfo v;
  v.name = p.name();
  v.doc_string = p.doc_string();
  if (p.has_type()) v.type = std::make_shared<onnx::TypeProto>(p.type());
  return v;
}

void value_info_to(const ValueInfo& v, onnx::ValueInfoProto* p) {
  p->set_name(v.name);
  if (!v.doc_string.empty()) p->set_doc_string(v.doc_string);
  if (v.type) *p->mutable_type() = *v.type;
}

// Graphs nest inside graph attributes (If, Loop, Scan) at most this deep. Parsing already bounds
// a file's nesting (protobuf's recursion limit of 100 messages is about 33 graphs); this bounds a
// model built in memory, so converting and planning it never recurse without end.
constexpr int kMaxGraphNesting = 64;

Graph graph_from(const onnx::GraphProto& p, int depth);

Node node_from(const onnx::NodeProto& p, int depth) {
  Node n;
  n.name = p.name();
  n.op_type = p.op_type();
  n.domain = canonical_domain(p.domain());
  n.doc_string = p.doc_string();
  n.inputs.assign(p.input().begin(), p.input().end());
  n.outputs.assign(p.output().begin(), p.output().end());
  for (const auto& ap : p.attribute()) {
    Attribute a;
    a.name = ap.name();
    auto copy = std::make_shared<onnx::AttributeProto>(ap);
    if (ap.has_g()) {
      a.graphs.push_back(std::make_shared<Graph>(graph_from(ap.g(), depth + 1)));
      copy->clear_g();
    }
    for (const auto& g : ap.graphs()) {
      a.graphs.push_back(std::make_shared<Graph>(graph_from(g, depth + 1)));
    }
    copy->clear_graphs();
    a.proto = std::move(copy);
    n.attributes.push_back(std::move(a));
  }
  return n;
}

Graph graph_from(const onnx::GraphProto& p, int depth) {
  if (depth > kMaxGraphNesting) {
    throw InvalidArgument("graph '" + p.name() + "' is nested " + std::to_string(depth) +
                          " graphs deep (graph attributes inside graph attributes); the most "
                          "graft accepts is " +
                          std::to_string(kMaxGraphNesting));
  }
  Graph g;
  g.name = p.name();
  g.doc_string = p.doc_string();
  for (const auto& v : p.input()) g.inputs.push_back(value_info_from(v));
  for (const auto& v : p.output()) g.outputs.push_back(value_info_from(v));
  for (const auto& v : p.value_info()) g.value_info[v.name()] = value_info_from(v);
  for (const auto& t : p.initializer())
    g.initializers.push_back(std::make_shared<onnx::TensorProto>(t));
  if (p.sparse_initializer_size() > 0) {
    throw NotImplemented("graph '" + p.name() + "': sparse initializers are not supported");
  }
  for (const auto& np : p.node()) {
    g.nodes.push_back(std::make_unique<Node>(node_from(np, depth)));
  }
  g.renumber();
  return g;
}

void graph_to(const Graph& g, onnx::GraphProto* p);

void node_to(const Node& n, onnx::NodeProto* p) {
  if (!n.name.empty()) p->set_name(n.name);
  p->set_op_type(n.op_type);
  if (!n.domain.empty()) p->set_domain(n.domain);
  if (!n.doc_string.empty()) p->set_doc_string(n.doc_string);
  for (const auto& i : n.inputs) p->add_input(i);
  for (const auto& o : n.outputs) p->add_output(o);
  for (const auto& a : n.attributes) {
    auto* ap = p->add_attribute();
    if (a.proto) *ap = *a.proto;
    ap->set_name(a.name);
    if (ap->type() == onnx::AttributeProto::GRAPH && !a.graphs.empty()) {
      graph_to(*a.graphs[0], ap->mutable_g());
    } else {
      for (const auto& g : a.graphs) graph_to(*g, ap->add_graphs());
    }
  }
}

void graph_to(const Graph& g, onnx::GraphProto* p) {
  p->set_name(g.name);
  if (!g.doc_string.empty()) p->set_doc_string(g.doc_string);
  for (const auto& v : g.inputs) value_info_to(v, p->add_input());
  for (const auto& v : g.outputs) value_info_to(v, p->add_output());
  for (const auto& [name, v] : g.value_info) value_info_to(v, p->add_value_info());
  for (const auto& t : g.initializers) *p->add_initializer() = *t;
  for (const auto& n : g.nodes) node_to(*n, p->add_node());
}

// Refuses an import of an ONNX domain at a version newer than this build's ONNX library defines
// (or below 1): graft has neither schemas nor kernels for it, and running the operators of an
// older version instead would compute something else. Other domains (com.microsoft, custom ops)
// are versioned by their kernels.
void check_opset_import(const onnx::OperatorSetIdProto& o, const std::string& where) {
  const std::string domain = canonical_domain(o.domain());
  const auto& known = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  const auto it = known.find(domain.empty() ? onnx::ONNX_DOMAIN : domain);
  if (it == known.end()) return;
  const std::string name = domain.empty() ? "ai.onnx" : domain;
  if (o.version() < 1 || o.version() > it->second.second) {
    throw InvalidArgument(where + " imports opset " + std::to_string(o.version()) + " of domain '" +
                          name + "'; graft knows versions 1 to " +
                          std::to_string(it->second.second) + " of it");
  }
}

}  // namespace

Node node_from_proto(const onnx::NodeProto& proto) { return node_from(proto, 0); }

Model model_from_proto(const onnx::ModelProto& p) {
  Model m;
  m.ir_version = p.ir_version();
  for (const auto& o : p.opset_import()) {
    check_opset_import(o, "the model");
    m.opset_imports[canonical_domain(o.domain())] = o.version();
  }
  for (const auto& f : p.functions()) {
    for (const auto& o : f.opset_import()) {
      check_opset_import(o, "function '" + f.domain() + "." + f.name() + "'");
    }
  }
  m.producer_name = p.producer_name();
  m.producer_version = p.producer_version();
  m.domain = p.domain();
  m.model_version = p.model_version();
  m.doc_string = p.doc_string();
  for (const auto& kv : p.metadata_props()) m.metadata[kv.key()] = kv.value();
  for (const auto& f : p.functions())
    m.functions.push_back(std::make_shared<onnx::FunctionProto>(f));
  m.graph = graph_from(p.graph(), 0);
  return m;
}

void model_to_proto(const Model& m, onnx::ModelProto* p) {
  p->Clear();
  p->set_ir_version(m.ir_version);
  for (const auto& [domain, version] : m.opset_imports) {
    auto* o = p->add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
  if (!m.producer_name.empty()) p->set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) p->set_producer_version(m.producer_version);
  if (!m.domain.empty()) p->set_domain(m.domain);
  if (m.model_version) p->set_model_version(m.model_version);
  if (!m.doc_string.empty()) p->set_doc_string(m.doc_string);
  for (const auto& [k, v] : m.metadata) {
    auto* kv = p->add_metadata_props();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& f : m.functions) *p->add_functions() = *f;
  graph_to(m.graph, p->mutable_graph());
}

}  // namespace graft::ir
