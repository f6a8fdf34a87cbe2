// The host-side rules of the CUDA MatMul kernels that read the node itself (its attribute
// protobufs, which nvcc-compiled code does not include).
#include "ir/model.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/matmul.h"

namespace graft::cuda {

bool device_activation(const ir::Node& node) {
  const ir::Attribute* a = node.find_attr("activation");
  return a == nullptr || a->proto->s().empty() || a->proto->s() == "Relu";
}

}  // namespace graft::cuda
