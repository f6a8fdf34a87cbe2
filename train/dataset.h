// Datasets on disk for the C++ training programs (graft train, examples/cpp/finetune): named
// arrays that share their first dimension, the sample axis. graft.training.write_dataset writes
// the file from Python. Every integer is little-endian:
//   8 bytes  "GRAFTDS1"
//   uint32   number of arrays, then for each array:
//     uint32   name length, then the name's bytes (the model input it feeds)
//     uint32   element type as ONNX's TensorProto code (1 float32, 6 int32, 7 int64, 11 float64)
//     uint32   rank (at least 1), then rank int64 dimensions; dimension 0 counts samples and is
//              the same for every array
//     the elements, row-major
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "exec/tensor.h"
#include "ir/api.h"

namespace graft {

// Reads a GRAFTDS1 file. Throws InvalidArgument naming the file and the array at fault for a
// file that is missing, truncated, of another format, or whose arrays disagree in samples.
GRAFT_API std::map<std::string, Tensor> read_dataset(const std::string& path);

// Rows `indices` (along dimension 0) of `t`, copied in that order.
GRAFT_API Tensor take_rows(const Tensor& t, const std::vector<int64_t>& indices);
// Rows [begin, end) of `t`, copied.
GRAFT_API Tensor slice_rows(const Tensor& t, int64_t begin, int64_t end);

}  // namespace graft
