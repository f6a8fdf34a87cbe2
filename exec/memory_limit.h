// The memory a session may allocate: checked before every tensor allocation, so a model that asks
// for more than the machine has fails with an error naming the node, the output and the size
// instead of being ended by the kernel's out-of-memory killer.
//
// The limit is SessionOptions::memory_limit_bytes (Python: the session config entry
// "session.memory_limit_bytes"). A run puts it in force on every thread that runs one of its
// nodes; elsewhere the default applies. An allocation of `b` bytes from an allocator is refused
// when the allocator's bytes in use plus `b` would pass the limit.
#pragma once

#include "ir/api.h"

#include <cstddef>
#include <string>

namespace graft {

class Allocator;

// The default limit: 80% of the physical memory (of the control group's limit when it has a
// lower one). It applies to host memory only; a limit set for a session applies to every
// allocator its nodes use.
GRAFT_API size_t default_memory_limit();

// Puts `limit_bytes` in force on this thread while it lives (0: the default), restoring the one
// before at the end.
class GRAFT_API MemoryLimitScope {
 public:
  explicit MemoryLimitScope(size_t limit_bytes);
  ~MemoryLimitScope();
  MemoryLimitScope(const MemoryLimitScope&) = delete;
  MemoryLimitScope& operator=(const MemoryLimitScope&) = delete;

 private:
  size_t previous_;
};

// The limit set on this thread by a MemoryLimitScope, 0 when none is.
GRAFT_API size_t thread_memory_limit();

// Whether allocating `bytes` more from `allocator` stays within the limit in force on this thread.
GRAFT_API bool within_memory_limit(size_t bytes, const Allocator& allocator);
// Throws Fail "cannot allocate <bytes> bytes for <what>: ..." naming the limit, where it comes
// from and the bytes already in use (for an allocation within_memory_limit refused).
[[noreturn]] GRAFT_API void throw_memory_limit(size_t bytes, const Allocator& allocator,
                                               const std::string& what);

}  // namespace graft
