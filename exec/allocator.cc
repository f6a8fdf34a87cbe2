#include "exec/allocator.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "exec/error.h"

namespace graft {

MemoryDevice Allocator::device() const {
  return on_host() ? MemoryDevice{} : MemoryDevice{name(), 0};
}

void Allocator::fill(void* ptr, int byte, size_t bytes) { std::memset(ptr, byte, bytes); }

void Allocator::copy_from_host(void* dst, const void* src, size_t bytes) {
  if (!on_host()) throw NotImplemented(std::string(name()) + " memory has no copy from the host");
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

void Allocator::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (!on_host()) throw NotImplemented(std::string(name()) + " memory has no copy to the host");
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

void Allocator::note_allocate(size_t bytes) {
  size_t now = in_use_ += bytes;
  size_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
}

namespace {

// Host memory with a cache of freed blocks: repeated runs of a model ask for the same sizes, so
// a released block is kept (up to kCacheLimit bytes in all) and handed out again instead of
// going back to the system, which would cost fresh page faults on every run.
class CpuAllocator : public Allocator {
 public:
  static constexpr size_t kCacheLimit = size_t{1} << 30;
  // Blocks below this size come from malloc's own caches quickly; not worth keeping.
  static constexpr size_t kMinCached = size_t{64} << 10;
  static constexpr size_t kHugePage = size_t{2} << 20;

  const char* name() const override { return "Cpu"; }

  void* allocate(size_t bytes) override {
    const size_t rounded = round_up(bytes);
    void* p = nullptr;
    if (rounded >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = cache_.find(rounded);
      if (it != cache_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= rounded;
      }
    }
    if (p == nullptr && rounded >= kHugePage) {
      // Large blocks live in 2 MiB-aligned regions that ask for transparent huge pages:
      // activations and gradients of a training step are tens of MiB, and 4 KiB pages cost a
      // fault and a TLB entry each. The block starts a few cache lines and pages into its region,
      // a different amount each time, so blocks do not all share their low address bits (GEMMs
      // over operands at equal offsets modulo 4 KiB stall on cache-set and 4K-aliasing conflicts).
      const size_t offset = (color_++ % 16) * (4096 + 64);
      const size_t region = (rounded + offset + kHugePage - 1) / kHugePage * kHugePage;
      char* base = static_cast<char*>(std::aligned_alloc(kHugePage, region));
      if (base == nullptr) throw std::bad_alloc();
      madvise(base, region, MADV_HUGEPAGE);
      p = base + offset;
      std::lock_guard<std::mutex> lock(mutex_);
      regions_[p] = base;
    } else if (p == nullptr) {
      p = std::aligned_alloc(64, rounded);
      if (p == nullptr) throw std::bad_alloc();
    }
    note_allocate(bytes);
    return p;
  }

  void release(void* ptr, size_t bytes) override {
    note_release(bytes);
    const size_t rounded = round_up(bytes);
    if (rounded >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + rounded <= kCacheLimit) {
        cache_[rounded].push_back(ptr);
        cached_bytes_ += rounded;
        return;
      }
      if (auto it = regions_.find(ptr); it != regions_.end()) {
        void* base = it->second;
        regions_.erase(it);
        std::free(base);
        return;
      }
    }
    std::free(ptr);
  }

 private:
  static size_t round_up(size_t bytes) { return bytes == 0 ? 64 : (bytes + 63) / 64 * 64; }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> cache_;
  std::unordered_map<void*, void*> regions_;  // huge-page block -> its region's start
  std::atomic<size_t> color_{0};
  size_t cached_bytes_ = 0;
};

}  // namespace

Allocator& cpu_allocator() {
  // Never destroyed: tensors held by other static objects may be released after main returns.
  static auto* allocator = new CpuAllocator();
  return *allocator;
}

}  // namespace graft
