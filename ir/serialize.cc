// Model files: parsing, safe external data, checking, shape inference, saving.
#include "ir/serialize.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include "ir/error.h"
#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"
#include "onnx/version_converter/convert.h"

namespace graft::ir {
namespace fs = std::filesystem;
namespace {

// Reads one tensor's external data into raw_data. The location must name a regular file inside
// `base_dir` reached without symbolic links.
void load_external(onnx::TensorProto& t, const std::string& base_dir) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset") offset = std::stoll(kv.value());
    if (kv.key() == "length") length = std::stoll(kv.value());
  }
  const std::string what = "tensor '" + t.name() + "': external data location '" + location + "'";
  if (location.empty())
    throw InvalidArgument("tensor '" + t.name() + "': external data has no location");
  if (base_dir.empty()) {
    throw InvalidArgument(what +
                          " cannot be resolved: the model was loaded from bytes with no folder");
  }
  fs::path rel(location);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
    throw InvalidArgument(what + " is an absolute path; it must be relative to the model's folder");
  }
  for (const auto& part : rel) {
    if (part == "..")
      throw InvalidArgument(what + " contains '..' and would leave the model's folder");
  }
  fs::path base = fs::absolute(fs::path(base_dir));
  fs::path walk = base;
  for (const auto& part : rel) {
    walk /= part;
    if (fs::is_symlink(walk)) throw InvalidArgument(what + " goes through a symbolic link");
  }
  if (!fs::is_regular_file(walk))
    throw InvalidArgument(what + " is not a file in the model's folder");
  std::ifstream in(walk, std::ios::binary);
  if (!in) throw InvalidArgument(what + " cannot be opened");
  auto file_size = static_cast<int64_t>(fs::file_size(walk));
  if (offset < 0 || offset > file_size)
    throw InvalidArgument(what + ": offset is past the end of the file");
  if (length < 0) length = file_size - offset;
  if (offset + length > file_size)
    throw InvalidArgument(what + ": offset + length is past the end of the file");
  std::string data(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(data.data(), length);
  t.set_raw_data(std::move(data));
  t.clear_external_data();
  t.set_data_location(onnx::TensorProto::DEFAULT);
}

void resolve_graph_external(onnx::GraphProto& g, const std::string& base_dir);

void resolve_attr_external(onnx::AttributeProto& a, const std::string& base_dir) {
  if (a.has_t() && a.t().data_location() == onnx::TensorProto::EXTERNAL)
    load_external(*a.mutable_t(), base_dir);
  for (auto& t : *a.mutable_tensors()) {
    if (t.data_location() == onnx::TensorProto::EXTERNAL) load_external(t, base_dir);
  }
  if (a.has_g()) resolve_graph_external(*a.mutable_g(), base_dir);
  for (auto& g : *a.mutable_graphs()) resolve_graph_external(g, base_dir);
}

void resolve_graph_external(onnx::GraphProto& g, const std::string& base_dir) {
  for (auto& t : *g.mutable_initializer()) {
    if (t.data_location() == onnx::TensorProto::EXTERNAL) load_external(t, base_dir);
  }
  for (auto& n : *g.mutable_node()) {
    for (auto& a : *n.mutable_attribute()) resolve_attr_external(a, base_dir);
  }
}

// Refuses an `axis` or `axes` attribute outside the int32 range, naming the node: no tensor has
// that many dimensions, and ONNX's shape inference narrows some of them to int (LayerNormalization
// turns 2^63 - 1 into -1 and writes before its shape), which would crash instead of failing.
void check_axis_attributes(const onnx::GraphProto& graph, const std::string& origin) {
  constexpr int64_t kLimit = INT32_MAX;
  for (const auto& node : graph.node()) {
    for (const auto& a : node.attribute()) {
      if (a.name() == "axis" || a.name() == "axes") {
        auto bad = [&](int64_t v) { return v > kLimit || v < -kLimit; };
        const auto it = std::find_if(a.ints().begin(), a.ints().end(), bad);
        if ((a.has_i() && bad(a.i())) || it != a.ints().end()) {
          const std::string who = "[" + node.op_type() + "] node" +
                                  (node.name().empty() ? "" : " '" + node.name() + "'");
          throw InvalidArgument(origin + ": " + who + ": attribute '" + a.name() +
                                "' holds an axis past any tensor's rank (" +
                                std::to_string(it != a.ints().end() ? *it : a.i()) + ")");
        }
      }
      // ONNX's Einsum shape inference loops forever on some equations with other characters
      // (a parenthesis): an equation is letters, commas, "->", "..." and spaces.
      if (node.op_type() == "Einsum" && a.name() == "equation") {
        for (unsigned char c : a.s()) {
          if (!std::isalpha(c) && c != ',' && c != '-' && c != '>' && c != '.' && c != ' ') {
            throw InvalidArgument(origin + ": [Einsum] node" +
                                  (node.name().empty() ? "" : " '" + node.name() + "'") +
                                  ": equation '" + a.s() + "' holds '" + std::string(1, c) +
                                  "', which is not a letter, ',', '->', '...' or a space");
          }
        }
      }
      if (a.has_g()) check_axis_attributes(a.g(), origin);
      for (const auto& g : a.graphs()) check_axis_attributes(g, origin);
    }
  }
}

Model finish_load(onnx::ModelProto& proto, const std::string& base_dir, const std::string& origin,
                  const LoadOptions& options) {
  if (!proto.has_graph()) throw InvalidArgument(origin + " has no graph: it is not an ONNX model");
  resolve_graph_external(*proto.mutable_graph(), base_dir);
  for (auto& f : *proto.mutable_functions()) {
    for (auto& n : *f.mutable_node()) {
      for (auto& a : *n.mutable_attribute()) resolve_attr_external(a, base_dir);
    }
  }
  if (options.check) {
    // onnx.checker insists that main-graph inputs and outputs carry a shape; onnxruntime, and
    // so graft, accept an unknown one. Lend such values an empty shape for the check only.
    std::vector<onnx::TypeProto_Tensor*> lent;
    for (auto* list :
         {proto.mutable_graph()->mutable_input(), proto.mutable_graph()->mutable_output()}) {
      for (auto& v : *list) {
        if (v.type().has_tensor_type() && !v.type().tensor_type().has_shape()) {
          lent.push_back(v.mutable_type()->mutable_tensor_type());
          lent.back()->mutable_shape();
        }
      }
    }
    // Before IR version 4 every initializer had to be a graph input too, and the checker holds
    // such models to it; the exporters of that time did not always list them, and onnxruntime
    // loads those models with the initializers as constants. So does graft: the check sees the
    // missing inputs, lent for it only.
    auto* graph = proto.mutable_graph();
    const int declared_inputs = graph->input_size();
    if (proto.ir_version() < 4) {
      std::set<std::string> inputs;
      for (const auto& v : graph->input()) inputs.insert(v.name());
      for (const auto& t : graph->initializer()) {
        if (inputs.count(t.name())) continue;
        auto* v = graph->add_input();
        v->set_name(t.name());
        auto* tensor_type = v->mutable_type()->mutable_tensor_type();
        tensor_type->set_elem_type(t.data_type());
        auto* shape = tensor_type->mutable_shape();
        for (int64_t d : t.dims()) shape->add_dim()->set_dim_value(d);
      }
    }
    try {
      onnx::checker::check_model(proto, false, false, false);
    } catch (const std::exception& e) {
      throw InvalidArgument(origin + " is not a valid ONNX model: " + e.what());
    }
    while (graph->input_size() > declared_inputs) graph->mutable_input()->RemoveLast();
    for (auto* t : lent) t->clear_shape();
  }
  check_axis_attributes(proto.graph(), origin);
  for (const auto& f : proto.functions()) {
    onnx::GraphProto body;
    *body.mutable_node() = f.node();
    check_axis_attributes(body, origin + ": function '" + f.name() + "'");
  }
  if (options.infer_shapes) {
    try {
      onnx::ShapeInferenceOptions si;
      si.check_type = false;
      si.error_mode = 0;
      onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), si);
    } catch (const std::exception& e) {
      throw InvalidArgument(origin + ": shape inference failed: " + e.what());
    }
  }
  // The main graph's initializers (the weights) move into the model instead of being copied.
  std::vector<std::shared_ptr<onnx::TensorProto>> initializers;
  initializers.reserve(static_cast<size_t>(proto.graph().initializer_size()));
  for (auto& t : *proto.mutable_graph()->mutable_initializer())
    initializers.push_back(std::make_shared<onnx::TensorProto>(std::move(t)));
  proto.mutable_graph()->clear_initializer();
  Model model = model_from_proto(proto);
  model.graph.initializers = std::move(initializers);
  return model;
}

}  // namespace

Model load_model_from_bytes(const std::string& bytes, const std::string& base_dir,
                            const LoadOptions& options) {
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) {
    throw InvalidArgument(
        "model bytes (" + std::to_string(bytes.size()) +
        " bytes) could not be parsed as an ONNX ModelProto: truncated, not ONNX, or nested "
        "more than 100 messages deep (about 33 graphs inside graph attributes)");
  }
  return finish_load(proto, base_dir, "model bytes", options);
}

Model load_model(const std::string& path, const LoadOptions& options) {
  // Parsed from the stream: the file's bytes are never held beside the parsed model.
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot open model file '" + path + "'");
  onnx::ModelProto proto;
  if (!proto.ParseFromIstream(&in)) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    throw InvalidArgument(
        "model file '" + path + "' (" + (ec ? std::string("unknown size") : std::to_string(size)) +
        " bytes) could not be parsed as an ONNX ModelProto: truncated, not ONNX, or nested "
        "more than 100 messages deep (about 33 graphs inside graph attributes)");
  }
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return finish_load(proto, dir, "model file '" + path + "'", options);
}

namespace {

// Copies value_info from `src` into `dst`, which have the same structure.
void copy_value_info(const Graph& src, Graph& dst) {
  for (const auto& [name, info] : src.value_info) dst.value_info[name] = info;
  for (size_t i = 0; i < src.nodes.size() && i < dst.nodes.size(); ++i) {
    const auto& sa = src.nodes[i]->attributes;
    auto& da = dst.nodes[i]->attributes;
    for (size_t a = 0; a < sa.size() && a < da.size(); ++a) {
      for (size_t g = 0; g < sa[a].graphs.size() && g < da[a].graphs.size(); ++g) {
        copy_value_info(*sa[a].graphs[g], *da[a].graphs[g]);
      }
    }
  }
}

}  // namespace

void infer_shapes(Model& model) {
  // Inference reads initializer types and shapes, not their data: the proto gets stand-ins
  // without elements, so the weights are not copied.
  std::vector<std::shared_ptr<onnx::TensorProto>> weights = std::move(model.graph.initializers);
  model.graph.initializers.clear();
  for (const auto& t : weights) {
    auto shape_only = std::make_shared<onnx::TensorProto>();
    shape_only->set_name(t->name());
    shape_only->set_data_type(t->data_type());
    *shape_only->mutable_dims() = t->dims();
    model.graph.initializers.push_back(std::move(shape_only));
  }
  onnx::ModelProto proto;
  try {
    model_to_proto(model, &proto);
  } catch (...) {
    model.graph.initializers = std::move(weights);
    throw;
  }
  model.graph.initializers = std::move(weights);
  try {
    onnx::ShapeInferenceOptions si;
    si.check_type = false;
    si.error_mode = 0;
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), si);
    proto.mutable_graph()->clear_initializer();
    Model inferred = model_from_proto(proto);
    copy_value_info(inferred.graph, model.graph);
  } catch (const std::exception&) {
    // Types stay as they were; kernels then learn dtypes when they run.
  }
}

Model convert_opset(const Model& model, int64_t target) {
  onnx::ModelProto proto;
  model_to_proto(model, &proto);
  try {
    onnx::ModelProto converted =
        onnx::version_conversion::ConvertVersion(proto, static_cast<int>(target));
    return model_from_proto(converted);
  } catch (const std::exception& e) {
    throw InvalidArgument("cannot convert the model to opset " + std::to_string(target) + ": " +
                          e.what());
  }
}

std::string serialize_model(const Model& model) {
  onnx::ModelProto proto;
  model_to_proto(model, &proto);
  std::string out;
  if (!proto.SerializeToString(&out))
    throw InvalidArgument("model could not be serialized (over 2 GiB?)");
  return out;
}

void save_model(const Model& model, const std::string& path) {
  std::string bytes = serialize_model(model);
  // Write beside the target and rename, so a failed save never destroys an existing file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InvalidArgument("cannot write model file '" + path + "'");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw InvalidArgument("writing model file '" + path + "' failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw InvalidArgument("cannot replace model file '" + path + "': " + ec.message());
}

}  // namespace graft::ir
