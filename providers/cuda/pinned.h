// Page-locked host memory (cudaHostAlloc), cached like device memory: the staging buffers of the
// copies between host and device, which the copy engines read and write while the host goes on,
// and the host tensors MemcpyToHost hands back (the CPU reads them as any host memory).
#pragma once

#include "providers/cuda/caching_allocator.h"

namespace graft::cuda {

// The process's pinned memory, made on first use and never destroyed. Blocks are host memory
// (on_host() is true), reused as soon as they are released unless a stream used them: mark those
// with pinned_memory().cache().record_use(ptr, stream) before releasing them, so a block is reused
// only after the copy that reads or writes it has run.
StreamAllocator& pinned_memory();

}  // namespace graft::cuda
