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
// mismatch of a named tensor) or the tensor at fault: an unknown element type, negative dims,
// dims whose product (or its size in bytes) overflows int64, stored data of another size
// than the dims need, a name that appears twice. Nothing is allocated for a tensor before its
// entry passes these checks. Whether the tensors fit a model is the caller's to check.
GRAFT_API Checkpoint load_checkpoint(const std::string& path);

// save_checkpoint by rank 0 of a data-parallel run of `world_size` ranks (1: this process alone
// writes): a collective that every rank calls. The other ranks wait until the file is complete;
// when rank 0 cannot write it, every rank throws InvalidArgument with rank 0's message, so no
// rank goes on to wait in a later collective for a peer that failed.
GRAFT_API void save_checkpoint_on_rank0(const Checkpoint& checkpoint, const std::string& path,
                                        int world_size);

// A float as the shortest text that reads back as the same bits (subnormals, 1e-45 included), as
// checkpoints store learning rates.
GRAFT_API std::string format_float(float value);
// The float `text` holds (all of it, as format_float writes it). Throws InvalidArgument naming
// `what` (for example "checkpoint 'ckpt': property 'graft.lr'") when it is not a number.
GRAFT_API float parse_float(const std::string& text, const std::string& what);

}  // namespace graft
