#include "exec/allocator.h"

#include <cstdlib>
#include <new>

namespace graft {

void Allocator::note_allocate(size_t bytes) {
  size_t now = in_use_ += bytes;
  size_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
}

namespace {

class CpuAllocator : public Allocator {
 public:
  const char* name() const override { return "Cpu"; }
  void* allocate(size_t bytes) override {
    size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    note_allocate(bytes);
    return p;
  }
  void release(void* ptr, size_t bytes) override {
    std::free(ptr);
    note_release(bytes);
  }
};

}  // namespace

Allocator& cpu_allocator() {
  static CpuAllocator allocator;
  return allocator;
}

}  // namespace graft
