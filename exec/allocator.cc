#include "exec/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "exec/checked.h"
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
// going back to the system, which would cost fresh page faults on every run. The cache never
// holds the process above the peak of live bytes: a block made fresh first evicts cached blocks
// until the live and cached bytes together fit under that peak (a first run whose sizes rarely
// repeat, or a memory pattern's arena replacing the blocks of the run that recorded it, would
// otherwise keep every size it ever freed).
class CpuAllocator : public Allocator {
 public:
  static constexpr size_t kCacheLimit = size_t{1} << 30;
  // Blocks below this size come from malloc's own caches quickly; not worth keeping.
  static constexpr size_t kMinCached = size_t{64} << 10;
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kPage = 4096;

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
      } else {
        evict_for(rounded);
      }
    }
    if (p == nullptr && rounded >= kHugePage) {
      // Large blocks live in 2 MiB-aligned regions of their own mapping that ask for transparent
      // huge pages (activations and gradients of a training step are tens of MiB, and 4 KiB pages
      // cost a fault and a TLB entry each); unmapping one returns it to the system at once. The
      // block starts a few cache lines and pages into its region, a different amount each time,
      // so blocks do not all share their low address bits (GEMMs over operands at equal offsets
      // modulo 4 KiB stall on cache-set and 4K-aliasing conflicts). Only the region's whole huge
      // pages ask for them: the tail past the last one stays in small pages, so a block a little
      // over a multiple of 2 MiB (a packed weight) does not hold nearly a huge page it never uses.
      const size_t offset = (color_++ % 16) * (4096 + 64);
      const size_t region = checked_round_up(checked_add(rounded, offset, "host allocation"), kPage,
                                             "host allocation");
      char* base = map_aligned(region);
      if (region >= kHugePage) madvise(base, region / kHugePage * kHugePage, MADV_HUGEPAGE);
      p = base + offset;
      std::lock_guard<std::mutex> lock(mutex_);
      regions_[p] = {base, region};
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
      if (free_region(ptr)) return;
    }
    std::free(ptr);
  }

 private:
  struct Region {
    char* base;
    size_t bytes;
  };

  static size_t round_up(size_t bytes) {
    return bytes == 0 ? 64 : checked_round_up(bytes, 64, "host allocation");
  }

  // `bytes` (a multiple of kPage) of fresh pages starting on a kHugePage boundary.
  static char* map_aligned(size_t bytes) {
    void* mapped = mmap(nullptr, checked_add(bytes, kHugePage, "host allocation"),
                        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    char* start = static_cast<char*>(mapped);
    const auto address = reinterpret_cast<uintptr_t>(start);
    char* base = start + ((kHugePage - address % kHugePage) % kHugePage);
    if (base > start) munmap(start, static_cast<size_t>(base - start));
    char* end = start + bytes + kHugePage;
    if (base + bytes < end) munmap(base + bytes, static_cast<size_t>(end - (base + bytes)));
    return base;
  }

  // Unmaps the region of large block `ptr`; false when `ptr` is not one. Called with mutex_ held.
  bool free_region(void* ptr) {
    auto it = regions_.find(ptr);
    if (it == regions_.end()) return false;
    munmap(it->second.base, it->second.bytes);
    regions_.erase(it);
    return true;
  }

  // Frees cached blocks, largest first, until a fresh block of `rounded` bytes keeps the live and
  // cached bytes within the peak of live bytes (or the cache is empty). Called with mutex_ held.
  void evict_for(size_t rounded) {
    const size_t live = bytes_in_use() + rounded;
    const size_t bound = std::max(peak_bytes(), live);
    while (cached_bytes_ > 0 && live + cached_bytes_ > bound) {
      auto largest = std::prev(cache_.end());
      if (largest->second.empty()) {
        cache_.erase(largest);
        continue;
      }
      void* block = largest->second.back();
      largest->second.pop_back();
      cached_bytes_ -= largest->first;
      if (!free_region(block)) std::free(block);
    }
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> cache_;
  std::unordered_map<void*, Region> regions_;  // large block -> its mapping
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
