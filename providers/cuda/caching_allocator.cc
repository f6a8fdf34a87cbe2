#include "providers/cuda/caching_allocator.h"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace graft::cuda {
namespace {

size_t round_up(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

}  // namespace

// A piece of a segment: handed out, free (in its pool's free set), or waiting for events.
struct CachingAllocator::Block {
  Block(char* p, size_t s, Pool* owner, bool is_small)
      : ptr(p), size(s), pool(owner), small(is_small) {}
  char* ptr;
  size_t size;
  Pool* pool;
  bool small;
  bool allocated = false;
  int pending = 0;        // events to wait for before the block is free
  Block* prev = nullptr;  // the neighbours in its segment, in address order
  Block* next = nullptr;
  std::vector<void*> uses;  // other streams that used it while it was handed out

  bool is_free() const { return !allocated && pending == 0; }
};

// The segments of one stream.
struct CachingAllocator::Pool {
  explicit Pool(void* s) : stream(s) {}
  void* stream;
  size_t limit = 0;
  size_t reserved = 0;
  FreeBlocks small_free;
  FreeBlocks large_free;
};

bool CachingAllocator::BySize::operator()(const Block* a, const Block* b) const {
  if (a->size != b->size) return a->size < b->size;
  return std::less<char*>()(a->ptr, b->ptr);
}

CachingAllocator::CachingAllocator(MemorySource& source, std::string name)
    : source_(source), name_(std::move(name)) {}

CachingAllocator::~CachingAllocator() {
  for (const PendingEvent& e : events_) source_.destroy_event(e.event);
  release_cached(nullptr);
}

void* CachingAllocator::allocate(size_t bytes, void* stream) {
  std::lock_guard lock(mutex_);
  if (bytes > (size_t{1} << 62)) out_of_memory(bytes, "no device has that much memory");
  const size_t size = std::max(kBlockAlign, round_up(bytes, kBlockAlign));
  const bool small = size <= kSmallBlock;
  process_events();
  Pool& pool = pool_of(stream);
  Block* block = take_free(pool, size, small);
  if (block == nullptr) block = new_segment(pool, size, small, bytes);
  split(block, size);
  block->allocated = true;
  live_.emplace(block->ptr, block);
  stats_.allocated += block->size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return block->ptr;
}

void CachingAllocator::release(void* ptr) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(static_cast<char*>(ptr));
  if (it == live_.end())
    throw std::invalid_argument(name_ + ": released memory that is not a live block");
  Block* block = it->second;
  live_.erase(it);
  block->allocated = false;
  stats_.allocated -= block->size;
  for (void* stream : block->uses) {
    events_.push_back({source_.record_event(stream), block});
    ++block->pending;
  }
  block->uses.clear();
  if (block->pending == 0) free_block(block);
}

void CachingAllocator::record_use(void* ptr, void* stream) {
  std::lock_guard lock(mutex_);
  char* p = static_cast<char*>(ptr);
  auto it = live_.upper_bound(p);
  if (it == live_.begin() || p >= std::prev(it)->second->ptr + std::prev(it)->second->size)
    throw std::invalid_argument(name_ + ": record_use of memory that is in no live block");
  Block* block = std::prev(it)->second;
  if (stream == block->pool->stream) return;
  if (std::find(block->uses.begin(), block->uses.end(), stream) == block->uses.end())
    block->uses.push_back(stream);
}

void CachingAllocator::set_limit(void* stream, size_t bytes) {
  std::lock_guard lock(mutex_);
  pool_of(stream).limit = bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard lock(mutex_);
  source_.synchronize();
  process_events();
  release_cached(nullptr);
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

size_t CachingAllocator::reserved(void* stream) const {
  std::lock_guard lock(mutex_);
  auto it = pools_.find(stream);
  return it == pools_.end() ? 0 : it->second->reserved;
}

CachingAllocator::Pool& CachingAllocator::pool_of(void* stream) {
  std::unique_ptr<Pool>& pool = pools_[stream];
  if (!pool) pool = std::make_unique<Pool>(stream);
  return *pool;
}

CachingAllocator::FreeBlocks& CachingAllocator::free_blocks(Pool& pool, bool small) {
  return small ? pool.small_free : pool.large_free;
}

// Best fit: the smallest free block of the stream's pool that holds `size` bytes.
CachingAllocator::Block* CachingAllocator::take_free(Pool& pool, size_t size, bool small) {
  FreeBlocks& free = free_blocks(pool, small);
  Block key(nullptr, size, &pool, small);
  auto it = free.lower_bound(&key);
  if (it == free.end()) return nullptr;
  Block* block = *it;
  free.erase(it);
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment(Pool& pool, size_t size, bool small,
                                                       size_t asked) {
  size_t bytes = small                 ? kSmallSegment
                 : size < kLargeShared ? kLargeSegment
                                       : round_up(size, kLargeRound);
  if (pool.limit != 0 && pool.reserved + bytes > pool.limit) {
    // Over the stream's limit: its cached segments go first, then a segment of just the block.
    source_.synchronize();
    process_events();
    release_cached(&pool);
    if (pool.reserved + bytes > pool.limit) bytes = size;
    if (pool.reserved + bytes > pool.limit) {
      out_of_memory(asked, "the stream's limit of " + std::to_string(pool.limit) +
                               " bytes would be passed (" + std::to_string(pool.reserved) +
                               " reserved for it)");
    }
  }
  void* ptr = source_.allocate(bytes);
  if (ptr == nullptr) {
    // Every stream's cached segments go back to the source once no work can use them.
    source_.synchronize();
    process_events();
    const size_t freed = release_cached(nullptr);
    ptr = source_.allocate(bytes);
    if (ptr == nullptr && bytes > size) {
      bytes = size;
      ptr = source_.allocate(bytes);
    }
    if (ptr == nullptr) {
      out_of_memory(asked, "the memory is exhausted, after " + std::to_string(freed) +
                               " cached bytes went back to it");
    }
  }
  ++stats_.segments;
  ++stats_.source_allocations;
  stats_.reserved += bytes;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  pool.reserved += bytes;
  return new Block(static_cast<char*>(ptr), bytes, &pool, small);
}

// Leaves `size` bytes in `block`; the rest becomes a free block after it when it is worth keeping
// (any remainder of a small block; more than kSmallBlock of a large one, so large blocks never
// turn into small ones).
void CachingAllocator::split(Block* block, size_t size) {
  const size_t rest = block->size - size;
  if (block->small ? rest == 0 : rest <= kSmallBlock) return;
  auto* tail = new Block(block->ptr + size, rest, block->pool, block->small);
  tail->prev = block;
  tail->next = block->next;
  if (block->next) block->next->prev = tail;
  block->next = tail;
  block->size = size;
  free_blocks(*block->pool, block->small).insert(tail);
}

// Returns a block no work uses any more to its pool, merged with its free neighbours.
void CachingAllocator::free_block(Block* block) {
  FreeBlocks& free = free_blocks(*block->pool, block->small);
  if (Block* prev = block->prev; prev != nullptr && prev->is_free()) {
    free.erase(prev);
    prev->size += block->size;
    prev->next = block->next;
    if (block->next) block->next->prev = prev;
    delete block;
    block = prev;
  }
  if (Block* next = block->next; next != nullptr && next->is_free()) {
    free.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (next->next) next->next->prev = block;
    delete next;
  }
  free.insert(block);
}

void CachingAllocator::process_events() {
  size_t kept = 0;
  for (size_t i = 0; i < events_.size(); ++i) {
    const PendingEvent e = events_[i];
    if (!source_.event_done(e.event)) {
      events_[kept++] = e;
      continue;
    }
    source_.destroy_event(e.event);
    if (--e.block->pending == 0) free_block(e.block);
  }
  events_.resize(kept);
}

// Gives the free whole segments of `only` (every pool when nullptr) back to the source; returns
// their bytes.
size_t CachingAllocator::release_cached(Pool* only) {
  size_t freed = 0;
  for (auto& [stream, pool] : pools_) {
    if (only != nullptr && pool.get() != only) continue;
    for (FreeBlocks* free : {&pool->small_free, &pool->large_free}) {
      for (auto it = free->begin(); it != free->end();) {
        Block* block = *it;
        if (block->prev != nullptr || block->next != nullptr) {
          ++it;
          continue;
        }
        it = free->erase(it);
        freed += block->size;
        release_segment(block);
      }
    }
  }
  return freed;
}

void CachingAllocator::release_segment(Block* block) {
  source_.release(block->ptr, block->size);
  block->pool->reserved -= block->size;
  stats_.reserved -= block->size;
  --stats_.segments;
  ++stats_.source_releases;
  delete block;
}

void CachingAllocator::out_of_memory(size_t asked, const std::string& why) const {
  throw OutOfMemory(name_ + ": out of memory allocating " + std::to_string(asked) +
                    " bytes: " + why + " (" + std::to_string(stats_.reserved) +
                    " bytes reserved, " + std::to_string(stats_.allocated) + " in use, " +
                    std::to_string(stats_.reserved - stats_.allocated) + " cached)");
}

StreamAllocator::StreamAllocator(CachingAllocator& cache, void* stream, std::string name,
                                 bool on_host)
    : cache_(cache), stream_(stream), name_(std::move(name)), on_host_(on_host) {}

void* StreamAllocator::allocate(size_t bytes) {
  void* ptr = cache_.allocate(bytes, stream_);
  note_allocate(bytes);
  return ptr;
}

void StreamAllocator::release(void* ptr, size_t bytes) {
  note_release(bytes);
  cache_.release(ptr);
}

}  // namespace graft::cuda
