// A stream-ordered caching allocator (the design of PyTorch's CUDA caching allocator, written
// anew): memory comes from a MemorySource in segments, segments are carved into blocks, and a
// released block goes back to the free blocks of the stream it was allocated for. A later
// allocation for that stream takes it without asking the source again: work on one stream runs
// in order, so whatever used the block before was enqueued before whatever uses it next. In a
// steady state (a session running the same model again and again) nothing reaches the source.
//
// Blocks of up to 1 MiB come from 2 MiB segments (the small pool), larger ones from their own
// segments of at least 20 MiB (the large pool); the smallest free block that fits is taken and
// split, and a released block merges with its free neighbours. A block another stream also used
// (record_use) waits for events recorded on those streams before it is free again. When the
// source runs out, every cached segment goes back to it and the allocation is tried again.
//
// Plain C++ (streams and events are opaque handles), so the host tests run it over a fake source.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "exec/allocator.h"

namespace graft::cuda {

// Raw memory and the events that order streams: cudaMalloc and cudaEvent on a device,
// cudaHostAlloc for pinned host memory, a counting fake in tests. Streams and events are
// cudaStream_t and cudaEvent_t there.
class MemorySource {
 public:
  virtual ~MemorySource() = default;
  // `bytes` of new memory, or nullptr when none is left (not an exception: the caller then frees
  // its cache and tries again). May throw Fail for any other error.
  virtual void* allocate(size_t bytes) = 0;
  // Gives back memory from allocate(), which no enqueued work may still use.
  virtual void release(void* ptr, size_t bytes) = 0;
  // Returns once all work enqueued on the memory's device has run.
  virtual void synchronize() = 0;
  // An event that completes once the work enqueued on `stream` so far has run.
  virtual void* record_event(void* stream) = 0;
  virtual bool event_done(void* event) = 0;
  virtual void destroy_event(void* event) = 0;
};

// std::bad_alloc whose message says how many bytes were asked and what the cache held.
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

struct MemoryStats {
  size_t reserved = 0;  // bytes of the segments held from the source
  size_t peak_reserved = 0;
  size_t allocated = 0;  // bytes of the blocks handed out (rounded up to 512)
  size_t peak_allocated = 0;
  size_t segments = 0;
  size_t source_allocations = 0;  // successful MemorySource::allocate calls, ever
  size_t source_releases = 0;     // MemorySource::release calls, ever
};

class CachingAllocator {
 public:
  // Blocks are multiples of this many bytes (and so aligned to it).
  static constexpr size_t kBlockAlign = 512;
  // Blocks up to this size are small: they come from kSmallSegment segments.
  static constexpr size_t kSmallBlock = size_t{1} << 20;
  static constexpr size_t kSmallSegment = size_t{2} << 20;
  // Large blocks below kLargeShared share segments of kLargeSegment bytes; larger ones get a
  // segment of their own, rounded up to kLargeRound.
  static constexpr size_t kLargeShared = size_t{10} << 20;
  static constexpr size_t kLargeSegment = size_t{20} << 20;
  static constexpr size_t kLargeRound = size_t{2} << 20;

  // `name` ("CUDA:0") starts the out-of-memory messages. The source must outlive the allocator.
  CachingAllocator(MemorySource& source, std::string name);
  // Gives every cached segment back to the source. Blocks still handed out are not freed.
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (a distinct one even for 0) for work on `stream`. Throws
  // OutOfMemory (a std::bad_alloc) when the source has no memory left even after the cache went
  // back to it, or when the stream would hold more than its limit.
  void* allocate(size_t bytes, void* stream);
  // Gives back a block from allocate(); later allocations for its stream may take it at once.
  // Throws std::invalid_argument for a pointer that is not a live block.
  void release(void* ptr);
  // Notes that `stream` (other than the block's own) uses the block holding `ptr`: once the block
  // is released it stays out of use until the work enqueued on `stream` by then has run. Throws
  // std::invalid_argument when `ptr` is in no live block.
  void record_use(void* ptr, void* stream);
  // The most bytes the segments of `stream` may take (0: no limit).
  void set_limit(void* stream, size_t bytes);
  // Waits for the device and gives every segment with no live block back to the source.
  void empty_cache();

  MemoryStats stats() const;
  // Bytes of the segments of `stream`.
  size_t reserved(void* stream) const;
  const std::string& name() const { return name_; }

 private:
  struct Block;
  struct Pool;
  struct BySize {
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeBlocks = std::set<Block*, BySize>;

  Pool& pool_of(void* stream);
  FreeBlocks& free_blocks(Pool& pool, bool small);
  Block* take_free(Pool& pool, size_t size, bool small);
  Block* new_segment(Pool& pool, size_t size, bool small, size_t asked);
  void split(Block* block, size_t size);
  void free_block(Block* block);
  void process_events();
  size_t release_cached(Pool* only);
  void release_segment(Block* block);
  [[noreturn]] void out_of_memory(size_t asked, const std::string& why) const;

  MemorySource& source_;
  std::string name_;
  mutable std::mutex mutex_;
  std::map<void*, std::unique_ptr<Pool>> pools_;  // by stream
  std::map<char*, Block*> live_;                  // handed-out blocks by address
  struct PendingEvent {
    void* event;
    Block* block;
  };
  std::vector<PendingEvent> events_;
  MemoryStats stats_;
};

// An Allocator for the tensors of one stream, over a CachingAllocator. Its counters give the
// bytes in use and their peak (as asked); reserved_bytes() the segments behind them.
class StreamAllocator : public Allocator {
 public:
  // `name` is what name() reports; `on_host`: whether the CPU may touch the memory (pinned host
  // memory) or not (device memory). The cache must outlive the allocator.
  StreamAllocator(CachingAllocator& cache, void* stream, std::string name, bool on_host);
  const char* name() const override { return name_.c_str(); }
  void* allocate(size_t bytes) override;
  void release(void* ptr, size_t bytes) override;
  bool on_host() const override { return on_host_; }

  CachingAllocator& cache() const { return cache_; }
  void* stream() const { return stream_; }
  size_t reserved_bytes() const { return cache_.reserved(stream_); }

 private:
  CachingAllocator& cache_;
  void* stream_;
  std::string name_;
  bool on_host_;
};

}  // namespace graft::cuda
