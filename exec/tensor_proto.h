// Conversion between ONNX TensorProto and graft Tensor.
#pragma once

#include "exec/tensor.h"

namespace onnx {
class SparseTensorProto;
class TensorProto;
class TypeProto;
}  // namespace onnx

namespace graft {

// Copies the proto's data (raw or typed fields; external data must already be resolved) into a
// new tensor. Throws InvalidArgument naming the tensor when the data does not match its shape.
Tensor tensor_from_proto(const onnx::TensorProto& proto);
// The dense tensor a sparse one describes: zeros (empty strings) but at its indices, which are
// linear ([NNZ]) or coordinates ([NNZ, rank]). Throws InvalidArgument naming the tensor for
// indices that do not fit its dims or values.
Tensor tensor_from_sparse_proto(const onnx::SparseTensorProto& proto);
// Writes `tensor` into `proto` (raw_data for fixed-size types, string_data for strings).
void tensor_to_proto(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto);
// Element dtype of a tensor, sequence-of-tensor or optional type; Undefined when unknown.
DType elem_dtype_of(const onnx::TypeProto& type);

}  // namespace graft
