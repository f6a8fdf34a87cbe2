// A Sum of zero-Pads that tile one axis is a Concat: gradients of the slices a tensor was cut
// into (q, k, v = qkv[0], qkv[1], qkv[2]; Split, Slice) each come back padded with zeros to the
// whole tensor and are summed. Concatenating the unpadded pieces writes each element once
// instead of zero-filling and adding every piece over the whole tensor.
#include <algorithm>

#include "ir/constants.h"
#include "ir/transforms/optimize.h"
#include "onnx/onnx_pb.h"

namespace graft::ir {
namespace {

struct Piece {
  std::string data;
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size = 0;  // of data along the axis, from its declared or inferred type
  const Node* pad = nullptr;
};

// The static length of `value` along `axis`, or -1 when its type does not say.
int64_t static_dim(const Graph& g, const std::string& value, int64_t axis) {
  const onnx::TypeProto* t = g.type_of(value);
  if (!t || !t->has_tensor_type() || !t->tensor_type().has_shape()) return -1;
  const auto& shape = t->tensor_type().shape();
  if (axis >= shape.dim_size() || !shape.dim(static_cast<int>(axis)).has_dim_value()) return -1;
  return shape.dim(static_cast<int>(axis)).dim_value();
}

// The Pad producing `value` when it zero-pads along one axis only, non-negatively, and only
// `sum` reads it; fills `piece` and `axis` (the padded axis, or -1 when no axis is padded).
bool zero_pad_piece(const Graph& g, const std::string& value, const Node& sum, Piece* piece,
                    int64_t* axis) {
  const Node* pad = g.producer(value);
  if (!pad || pad->op_type != "Pad" || !pad->domain.empty() || pad->inputs.size() < 2) return false;
  const auto consumers = g.consumers(value);
  if (consumers.size() != 1 || consumers[0] != &sum) return false;
  if (g.is_graph_output(value)) return false;
  if (const Attribute* mode = pad->find_attr("mode"); mode && mode->proto->s() != "constant")
    return false;
  // A constant_value other than absent, and an axes input, are not handled.
  if (pad->inputs.size() > 2 && !pad->inputs[2].empty()) return false;
  const auto pads = constant_ints(g, pad->inputs[1]);
  if (!pads || pads->empty() || pads->size() % 2 != 0) return false;
  const size_t rank = pads->size() / 2;
  *axis = -1;
  for (size_t d = 0; d < rank; ++d) {
    const int64_t b = (*pads)[d], e = (*pads)[rank + d];
    if (b < 0 || e < 0) return false;
    if (b == 0 && e == 0) continue;
    if (*axis >= 0) return false;  // a second padded axis
    *axis = static_cast<int64_t>(d);
  }
  if (*axis < 0) return false;
  piece->data = pad->inputs[0];
  piece->begin = (*pads)[static_cast<size_t>(*axis)];
  piece->end = (*pads)[rank + static_cast<size_t>(*axis)];
  piece->size = static_dim(g, piece->data, *axis);
  piece->pad = pad;
  return piece->size > 0;
}

// The pieces, sorted by where they start, tile the axis exactly: each pads to the same length,
// the first starts at 0, and each starts where the one before ends.
bool tiles(std::vector<Piece>& pieces) {
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) { return a.begin < b.begin; });
  const int64_t n = pieces[0].begin + pieces[0].size + pieces[0].end;
  int64_t next = 0;
  for (const auto& p : pieces) {
    if (p.begin != next || p.begin + p.size + p.end != n) return false;
    next = p.begin + p.size;
  }
  return next == n;
}

}  // namespace

int pads_to_concat(Graph& graph) {
  int rewritten = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& sum = *graph.nodes[i];
    if (sum.op_type != "Sum" || !sum.domain.empty() || sum.inputs.size() < 2 ||
        sum.outputs.size() != 1)
      continue;
    std::vector<Piece> pieces;
    int64_t axis = -1;
    bool ok = true;
    for (const auto& in : sum.inputs) {
      Piece p;
      int64_t a = -1;
      if (!zero_pad_piece(graph, in, sum, &p, &a) || (axis >= 0 && a != axis) ||
          std::any_of(pieces.begin(), pieces.end(),
                      [&](const Piece& q) { return q.pad == p.pad; })) {
        ok = false;
        break;
      }
      axis = a;
      pieces.push_back(p);
    }
    if (!ok || !tiles(pieces)) continue;
    Node concat;
    concat.name = sum.name.empty() ? "" : sum.name + "/concat";
    concat.op_type = "Concat";
    for (const auto& p : pieces) concat.inputs.push_back(p.data);
    concat.outputs = sum.outputs;
    concat.attributes.push_back(int_attribute("axis", axis));
    std::vector<const Node*> pads;
    for (const auto& p : pieces) pads.push_back(p.pad);
    graph.insert_node(i, std::move(concat));
    graph.remove_node(&sum);
    for (const Node* pad : pads) graph.remove_node(pad);
    ++rewritten;
    i = 0;  // positions shifted; the scan restarts (rewrites only shrink the graph)
  }
  return rewritten;
}

}  // namespace graft::ir
