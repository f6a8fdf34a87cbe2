#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

StridedIndex strided_index(const Shape& dims, const std::vector<int64_t>& strides,
                           const std::string& who) {
  if (dims.size() > static_cast<size_t>(kMaxDims)) {
    throw InvalidArgument(who + ": tensors of rank " + std::to_string(dims.size()) +
                          " exceed the CUDA kernels' " + std::to_string(kMaxDims) + " dimensions");
  }
  StridedIndex index;
  index.rank = static_cast<int>(dims.size());
  index.contiguous = strides == contiguous_strides(dims);
  for (size_t d = 0; d < dims.size(); ++d) {
    index.dims[d] = dims[d];
    index.strides[d] = strides[d];
  }
  return index;
}

StridedIndex broadcast_index(const Shape& in, const Shape& out, const std::string& who) {
  const std::vector<int64_t> in_strides = contiguous_strides(in);
  std::vector<int64_t> strides(out.size(), 0);
  const size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] == out[lead + d]) {
      strides[lead + d] = in_strides[d];
    } else if (in[d] != 1) {
      throw InvalidArgument(who + ": shape " + shape_to_string(in) + " cannot be broadcast to " +
                            shape_to_string(out));
    }
  }
  StridedIndex index = strided_index(out, strides, who);
  // Equal shapes are read in output order even when a dim of 1 makes the strides differ.
  index.contiguous = index.contiguous || in == out;
  return index;
}

}  // namespace graft::cuda
