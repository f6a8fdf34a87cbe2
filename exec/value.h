// Value: what flows along a graph edge. A tensor, a sequence of tensors, a map, an optional
// (which may be empty), or nothing at all (an omitted optional input).
#pragma once

#include "ir/api.h"

#include <memory>
#include <vector>

#include "exec/tensor.h"

namespace graft {

class GRAFT_API Value {
 public:
  enum class Kind { None, Tensor, Sequence, Map, Optional };

  Value() = default;
  Value(Tensor tensor);  // NOLINT(google-explicit-constructor): a tensor is the common case
  // A sequence of tensors (or of maps, with elem_kind Map) whose elements are `elem_dtype`.
  static Value sequence(std::vector<Value> elements, DType elem_dtype,
                        Kind elem_kind = Kind::Tensor);
  // A map from a 1-D key tensor to a 1-D value tensor of the same length.
  static Value map(Tensor keys, Tensor values);
  // An optional holding `element`, or empty when `element` is a None value. `elem_kind` and
  // `elem_dtype` say what the optional would hold, so an empty one still has a type.
  static Value optional(Value element, Kind elem_kind, DType elem_dtype);

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_tensor() const { return kind_ == Kind::Tensor; }

  // Throws std::invalid_argument if the value is not a tensor.
  const Tensor& tensor() const;
  Tensor& tensor();
  // Sequence elements, the map's keys/values, or an optional's element (0 or 1 of them).
  const std::vector<Value>& elements() const { return elements_; }
  std::vector<Value>& elements() { return elements_; }
  const Tensor& map_keys() const { return tensor_; }
  const Tensor& map_values() const { return map_values_; }
  // Element dtype of a sequence or optional; for an optional of a sequence, the sequence's.
  DType elem_dtype() const { return elem_dtype_; }
  Kind elem_kind() const { return elem_kind_; }
  bool has_element() const { return !elements_.empty(); }

 private:
  Kind kind_ = Kind::None;
  Tensor tensor_;
  Tensor map_values_;
  std::vector<Value> elements_;
  Kind elem_kind_ = Kind::Tensor;
  DType elem_dtype_ = DType::Undefined;
};

}  // namespace graft
