#include "exec/value.h"

#include "exec/error.h"

namespace graft {

Value::Value(Tensor tensor) : kind_(Kind::Tensor), tensor_(std::move(tensor)) {
  elem_dtype_ = tensor_.dtype();
}

Value Value::sequence(std::vector<Value> elements, DType elem_dtype, Kind elem_kind) {
  Value v;
  v.kind_ = Kind::Sequence;
  v.elements_ = std::move(elements);
  v.elem_kind_ = elem_kind;
  v.elem_dtype_ = elem_dtype;
  return v;
}

Value Value::map(Tensor keys, Tensor values) {
  if (keys.size() != values.size()) {
    throw InvalidArgument("map keys and values differ in length");
  }
  Value v;
  v.kind_ = Kind::Map;
  v.elem_dtype_ = values.dtype();
  v.tensor_ = std::move(keys);
  v.map_values_ = std::move(values);
  return v;
}

Value Value::optional(Value element, Kind elem_kind, DType elem_dtype) {
  Value v;
  v.kind_ = Kind::Optional;
  v.elem_kind_ = elem_kind;
  v.elem_dtype_ = elem_dtype;
  if (!element.is_none()) v.elements_.push_back(std::move(element));
  return v;
}

const Tensor& Value::tensor() const {
  if (kind_ != Kind::Tensor) throw InvalidArgument("value is not a tensor");
  return tensor_;
}

Tensor& Value::tensor() {
  if (kind_ != Kind::Tensor) throw InvalidArgument("value is not a tensor");
  return tensor_;
}

}  // namespace graft
