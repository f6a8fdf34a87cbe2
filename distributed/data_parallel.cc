#include "distributed/data_parallel.h"

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>

#include "autodiff/rule.h"
#include "ir/error.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft::distributed {
namespace {

size_t element_bytes(int32_t dtype) {
  switch (dtype) {
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
      return 8;
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
      return 2;
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL:
      return 1;
    default:
      return 4;
  }
}

// The gradient's size, from its parameter's initializer or else its declared type (0 when
// neither says: it then only joins a bucket).
size_t gradient_bytes(const ir::Graph& graph, const std::string& param, const std::string& grad) {
  if (const onnx::TensorProto* t = graph.find_initializer(param)) {
    size_t n = element_bytes(t->data_type());
    for (int64_t d : t->dims()) n *= static_cast<size_t>(d);
    return n;
  }
  const onnx::TypeProto* type = graph.type_of(grad);
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape()) return 0;
  size_t n = element_bytes(type->tensor_type().elem_type());
  for (const auto& d : type->tensor_type().shape().dim()) {
    if (!d.has_dim_value()) return 0;
    n *= static_cast<size_t>(d.dim_value());
  }
  return n;
}

ir::Node make_node(const std::string& op_type, const std::string& name,
                   std::vector<std::string> inputs, std::vector<std::string> outputs) {
  ir::Node n;
  n.op_type = op_type;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

struct Gradient {
  std::string name;
  std::string local;  // the value the all-reduce reads
  size_t producer;    // index of the node computing `local`
  size_t bytes;
  // The Identity that named the gradient (autodiff ends with one per parameter); it is
  // replaced by the all-reduce, or nullptr when the computing node writes the name itself.
  const ir::Node* rename = nullptr;
};

}  // namespace

GradientBuckets add_gradient_all_reduce(ir::Model& step, const std::vector<std::string>& params,
                                        const DataParallelOptions& options) {
  if (options.bucket_bytes == 0) throw InvalidArgument("data parallel: bucket_bytes must be > 0");
  ir::Graph& graph = step.graph;
  graph.renumber();
  std::vector<Gradient> grads;
  for (const auto& p : params) {
    const std::string g = p + names::kGradSuffix;
    ir::Node* producer = graph.producer(g);
    if (!producer) {
      const bool defined = graph.find_initializer(g) || graph.is_graph_input(g);
      if (!defined)
        throw InvalidArgument("data parallel: the model has no gradient '" + g + "' of '" + p +
                              "'");
      continue;
    }
    Gradient grad{g, g + "/local", producer->index, gradient_bytes(graph, p, g)};
    // The computing node's position, not that of a trailing Identity, decides when the
    // gradient is ready.
    if (producer->op_type == "Identity" && producer->domain.empty()) {
      if (ir::Node* source = graph.producer(producer->inputs[0])) {
        grad.local = producer->inputs[0];
        grad.producer = source->index;
        grad.rename = producer;
      }
    }
    grads.push_back(grad);
  }
  std::stable_sort(grads.begin(), grads.end(),
                   [](const Gradient& a, const Gradient& b) { return a.producer < b.producer; });

  std::vector<std::vector<const Gradient*>> buckets;
  size_t filled = 0;
  for (const auto& g : grads) {
    if (buckets.empty() || (filled > 0 && filled + g.bytes > options.bucket_bytes)) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(&g);
    filled += g.bytes;
  }

  GradientBuckets result;
  // Back to front, so that inserting a bucket's node leaves the earlier positions valid.
  for (size_t b = buckets.size(); b-- > 0;) {
    const size_t last = buckets[b].back()->producer;
    ir::Node reduce;
    reduce.op_type = "AllReduce";
    reduce.domain = names::kDomain;
    reduce.name = "distributed/AllReduce_" + std::to_string(b);
    reduce.attributes.push_back({"reduction", autodiff::Attr::s("reduction", "average").proto, {}});
    for (const Gradient* g : buckets[b]) {
      if (!g->rename) {
        // Readers up to the bucket's all-reduce (backward itself) keep the local gradient.
        for (ir::Node* reader : graph.consumers(g->name)) {
          if (reader->index > last) continue;
          std::replace(reader->inputs.begin(), reader->inputs.end(), g->name, g->local);
        }
        ir::Node* producer = graph.nodes[g->producer].get();
        std::replace(producer->outputs.begin(), producer->outputs.end(), g->name, g->local);
        if (auto it = graph.value_info.find(g->name); it != graph.value_info.end()) {
          ir::ValueInfo info = it->second;
          info.name = g->local;
          graph.value_info[g->local] = info;
        }
      }
      reduce.inputs.push_back(g->local);
      reduce.outputs.push_back(g->name);
    }
    result.buckets.insert(result.buckets.begin(), std::vector<std::string>(reduce.outputs));
    result.nodes.insert(result.nodes.begin(), reduce.name);
    graph.insert_node(last + 1, std::move(reduce));
  }
  for (const auto& g : grads) {
    if (g.rename) graph.remove_node(g.rename);
  }
  if (!buckets.empty()) step.opset_imports[names::kDomain] = 1;
  graph.renumber();
  return result;
}

std::vector<int> partition_parameters(const ir::Model& model,
                                      const std::vector<std::string>& params, int world_size) {
  if (world_size < 1)
    throw InvalidArgument("ZeRO: world size must be >= 1, got " + std::to_string(world_size));
  std::vector<size_t> bytes(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    if (!model.graph.find_initializer(params[i]))
      throw InvalidArgument("ZeRO: parameter '" + params[i] + "' is not an initializer");
    bytes[i] = gradient_bytes(model.graph, params[i], "");
  }
  std::vector<size_t> order(params.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return bytes[a] > bytes[b]; });
  std::vector<size_t> load(static_cast<size_t>(world_size), 0);
  std::vector<int> owners(params.size(), 0);
  for (size_t i : order) {
    const auto least = std::min_element(load.begin(), load.end());
    owners[i] = static_cast<int>(least - load.begin());
    *least += bytes[i];
  }
  return owners;
}

void add_gradient_clipping(ir::Model& step, const std::vector<std::string>& params,
                           float max_norm) {
  if (!(max_norm > 0))
    throw InvalidArgument("gradient clipping: max_norm must be > 0, got " +
                          std::to_string(max_norm));
  ir::Graph& graph = step.graph;
  graph.renumber();
  size_t first_reader = graph.nodes.size();
  std::vector<std::string> grads;
  for (const auto& p : params) {
    const onnx::TensorProto* init = graph.find_initializer(p);
    if (!init || init->data_type() != onnx::TensorProto::FLOAT)
      throw InvalidArgument("gradient clipping: parameter '" + p + "' is not a float initializer");
    grads.push_back(p + names::kGradSuffix);
    for (const ir::Node* n : graph.consumers(grads.back()))
      first_reader = std::min(first_reader, n->index);
  }
  std::vector<ir::Node> nodes;
  const std::string prefix = "distributed/clip/";
  std::vector<std::string> squares;
  for (const auto& g : grads) {
    squares.push_back(prefix + g + "/sum_square");
    ir::Node n = make_node("ReduceSumSquare", squares.back(), {g}, {squares.back()});
    n.attributes.push_back({"keepdims", autodiff::Attr::i("keepdims", 0).proto, {}});
    nodes.push_back(std::move(n));
  }
  auto constant = [&](const std::string& name, float value) {
    ir::Node n = make_node("Constant", prefix + name, {}, {prefix + name});
    n.attributes.push_back({"value_float", autodiff::Attr::f("value_float", value).proto, {}});
    nodes.push_back(std::move(n));
    return prefix + name;
  };
  auto op = [&](const std::string& type, const std::string& name, std::vector<std::string> in) {
    nodes.push_back(make_node(type, prefix + name, std::move(in), {prefix + name}));
    return prefix + name;
  };
  const std::string norm = op("Sqrt", "norm", {op("Sum", "sum_square", squares)});
  const std::string ratio =
      op("Div", "ratio",
         {constant("max_norm", max_norm), op("Add", "norm_eps", {norm, constant("eps", 1e-6f)})});
  const std::string scale = op("Min", "scale", {ratio, constant("one", 1.0f)});
  for (const auto& g : grads) {
    for (ir::Node* n : graph.consumers(g))
      std::replace(n->inputs.begin(), n->inputs.end(), g, g + "/clipped");
    nodes.push_back(make_node("Mul", prefix + g, {g, scale}, {g + "/clipped"}));
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    graph.insert_node(first_reader + i, std::move(nodes[i]));
  graph.renumber();
}

void add_parameter_broadcast(ir::Model& step, const std::vector<std::string>& params,
                             const std::vector<int>& owners, int rank) {
  if (owners.size() != params.size())
    throw InvalidArgument("ZeRO: " + std::to_string(owners.size()) + " owners for " +
                          std::to_string(params.size()) + " parameters");
  ir::Graph& graph = step.graph;
  const int ranks = owners.empty() ? 0 : *std::max_element(owners.begin(), owners.end()) + 1;
  for (int root = 0; root < ranks; ++root) {
    ir::Node cast;
    cast.op_type = "Broadcast";
    cast.domain = names::kDomain;
    cast.name = "distributed/Broadcast_" + std::to_string(root);
    cast.attributes.push_back({"root", autodiff::Attr::i("root", root).proto, {}});
    for (size_t i = 0; i < params.size(); ++i) {
      if (owners[i] != root) continue;
      const std::string& p = params[i];
      const std::string next = p + names::kNewSuffix;
      const onnx::TensorProto* init = graph.find_initializer(p);
      if (!init) throw InvalidArgument("ZeRO: parameter '" + p + "' is not an initializer");
      if (root == rank) {
        ir::Node* update = graph.producer(next);
        if (!update)
          throw InvalidArgument("ZeRO: rank " + std::to_string(rank) + " owns '" + p +
                                "' but no node computes '" + next + "'");
        std::replace(update->outputs.begin(), update->outputs.end(), next, next + "/local");
        cast.inputs.push_back(next + "/local");
      } else {
        if (!graph.is_graph_input(p)) graph.inputs.push_back({p, ir::tensor_type(*init), ""});
        graph.outputs.push_back({next, ir::tensor_type(*init), ""});
        cast.inputs.push_back(p);
      }
      cast.outputs.push_back(next);
    }
    if (!cast.inputs.empty()) graph.add_node(std::move(cast));
  }
  step.opset_imports[names::kDomain] = 1;
  graph.renumber();
}

}  // namespace graft::distributed
