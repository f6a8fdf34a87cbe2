#include "exec/memory_limit.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "exec/allocator.h"
#include "exec/error.h"

namespace graft {
namespace {

thread_local size_t tls_limit = 0;

size_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  size_t bytes =
      pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t{0};
  // A control group's limit (cgroup v2, then v1) is what the process may really use.
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    unsigned long long limit = 0;
    if (in >> limit && limit > 0 && (bytes == 0 || limit < bytes)) {
      bytes = static_cast<size_t>(limit);
    }
  }
  return bytes;
}

std::string human(size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%zu bytes (%.1f GiB)", bytes,
                static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return text;
}

}  // namespace

size_t default_memory_limit() {
  static const size_t limit = [] {
    const size_t physical = physical_memory();
    return physical == 0 ? SIZE_MAX : physical / 5 * 4;
  }();
  return limit;
}

MemoryLimitScope::MemoryLimitScope(size_t limit_bytes) : previous_(tls_limit) {
  tls_limit = limit_bytes;
}

MemoryLimitScope::~MemoryLimitScope() { tls_limit = previous_; }

size_t thread_memory_limit() { return tls_limit; }

bool within_memory_limit(size_t bytes, const Allocator& allocator) {
  const bool set = tls_limit != 0;
  if (!set && !allocator.on_host()) return true;
  const size_t limit = set ? tls_limit : default_memory_limit();
  return bytes <= limit && allocator.bytes_in_use() <= limit - bytes;
}

void throw_memory_limit(size_t bytes, const Allocator& allocator, const std::string& what) {
  const bool set = tls_limit != 0;
  const size_t limit = set ? tls_limit : default_memory_limit();
  const size_t in_use = allocator.bytes_in_use();
  throw Fail("cannot allocate " + human(bytes) + " for " + what + ": " + allocator.name() +
             " memory would pass the " +
             (set ? "session's memory limit (session.memory_limit_bytes) of "
                  : "default memory limit (80% of physical memory; session config entry "
                    "session.memory_limit_bytes sets another) of ") +
             human(limit) + ", with " + human(in_use) + " in use");
}

}  // namespace graft
