#include "ir/constants.h"

#include <cstring>

#include "onnx/onnx_pb.h"

namespace graft::ir {

std::optional<std::vector<int64_t>> tensor_ints(const onnx::TensorProto& t) {
  std::vector<int64_t> out;
  if (t.data_type() == onnx::TensorProto::INT64) {
    if (t.has_raw_data()) {
      out.resize(t.raw_data().size() / sizeof(int64_t));
      std::memcpy(out.data(), t.raw_data().data(), out.size() * sizeof(int64_t));
    } else {
      out.assign(t.int64_data().begin(), t.int64_data().end());
    }
  } else if (t.data_type() == onnx::TensorProto::INT32) {
    if (t.has_raw_data()) {
      std::vector<int32_t> v(t.raw_data().size() / sizeof(int32_t));
      std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(int32_t));
      out.assign(v.begin(), v.end());
    } else {
      out.assign(t.int32_data().begin(), t.int32_data().end());
    }
  } else {
    return std::nullopt;
  }
  return out;
}

std::optional<std::vector<int64_t>> constant_ints(const Graph& g, const std::string& value) {
  if (g.is_graph_input(value)) return std::nullopt;  // an initializer the caller may override
  if (const onnx::TensorProto* t = g.find_initializer(value)) return tensor_ints(*t);
  const Node* n = g.producer(value);
  if (!n || n->op_type != "Constant" || !n->domain.empty()) return std::nullopt;
  for (const auto& a : n->attributes) {
    if (a.proto->name() == "value") return tensor_ints(a.proto->t());
    if (a.proto->name() == "value_int") return std::vector<int64_t>{a.proto->i()};
    if (a.proto->name() == "value_ints")
      return std::vector<int64_t>(a.proto->ints().begin(), a.proto->ints().end());
  }
  return std::nullopt;
}

}  // namespace graft::ir
