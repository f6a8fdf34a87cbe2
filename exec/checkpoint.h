// Checkpoints: named tensors (parameters, optimizer state), the step counter and user
// properties in one file. Written atomically (temporary file, fsync, rename, fsync of the
// folder), each tensor with a CRC-32, so a crash while writing leaves the previous checkpoint
// intact and a damaged file is refused rather than half-read.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "exec/error.h"
#include "exec/tensor.h"

namespace graft {

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  int64_t step = 0;
  std::map<std::string, std::string> properties;
};

// Throws InvalidArgument if the file cannot be written; an existing checkpoint at `path` is
// replaced only once the new one is complete on disk.
GRAFT_API void save_checkpoint(const Checkpoint& checkpoint, const std::string& path);
// Throws InvalidArgument naming the file and the damage (bad magic, truncated, checksum
// mismatch of a named tensor).
GRAFT_API Checkpoint load_checkpoint(const std::string& path);

}  // namespace graft
