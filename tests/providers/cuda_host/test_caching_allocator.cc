// The CUDA provider's caching allocator (providers/cuda/caching_allocator.h) over a fake memory
// source that counts its calls, hands out host memory up to a capacity and completes events only
// when the test says so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "providers/cuda/caching_allocator.h"

namespace graft::cuda {
namespace {

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;

class FakeSource final : public MemorySource {
 public:
  explicit FakeSource(size_t capacity = size_t{1} << 40) : capacity_(capacity) {}
  ~FakeSource() override {
    for (const auto& [ptr, bytes] : live_) std::free(ptr);
  }

  void* allocate(size_t bytes) override {
    ++allocations;
    if (held_ + bytes > capacity_) return nullptr;
    void* ptr = std::aligned_alloc(CachingAllocator::kBlockAlign, bytes);
    live_[ptr] = bytes;
    held_ += bytes;
    return ptr;
  }
  void release(void* ptr, size_t bytes) override {
    ++releases;
    EXPECT_EQ(live_.at(ptr), bytes);
    live_.erase(ptr);
    held_ -= bytes;
    std::free(ptr);
  }
  void synchronize() override {
    ++synchronizations;
    complete_events();
  }
  void* record_event(void* stream) override {
    recorded.push_back(stream);
    return reinterpret_cast<void*>(++last_event_);
  }
  bool event_done(void* event) override { return reinterpret_cast<uintptr_t>(event) <= completed_; }
  void destroy_event(void*) override { ++destroyed_events; }

  // The device catches up with every event recorded so far.
  void complete_events() { completed_ = last_event_; }
  size_t held() const { return held_; }

  int allocations = 0;  // calls, failed ones included
  int releases = 0;
  int synchronizations = 0;
  int destroyed_events = 0;
  std::vector<void*> recorded;  // the stream of each recorded event

 private:
  size_t capacity_;
  size_t held_ = 0;
  std::map<void*, size_t> live_;
  uintptr_t last_event_ = 0;
  uintptr_t completed_ = 0;
};

void* stream(int i) { return reinterpret_cast<void*>(static_cast<uintptr_t>(0x1000 * i)); }

char* at(void* p) { return static_cast<char*>(p); }

TEST(CudaCachingAllocator, SteadyStateMakesNoSourceCalls) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  StreamAllocator allocator(cache, stream(1), "Fake", false);
  const std::vector<size_t> sizes = {100,       4 * kKiB,  700 * kKiB, 3 * kMiB / 2,
                                     12 * kMiB, 64 * kMiB, 0,          513};
  int allocations_after_first = 0;
  for (int step = 0; step < 50; ++step) {
    std::vector<void*> ptrs;
    for (size_t bytes : sizes) ptrs.push_back(allocator.allocate(bytes));
    // Released in a different order than allocated, as a planner frees values.
    for (size_t i : {3, 0, 7, 5, 1, 6, 2, 4}) allocator.release(ptrs[i], sizes[i]);
    if (step == 0) allocations_after_first = source.allocations;
  }
  EXPECT_GT(allocations_after_first, 0);
  EXPECT_EQ(source.allocations, allocations_after_first);
  EXPECT_EQ(source.releases, 0);
  EXPECT_EQ(source.synchronizations, 0);
  EXPECT_EQ(allocator.bytes_in_use(), 0u);
  size_t total = 0;
  for (size_t bytes : sizes) total += bytes;
  EXPECT_EQ(allocator.peak_bytes(), total);
  EXPECT_EQ(allocator.reserved_bytes(), source.held());
  EXPECT_EQ(cache.stats().allocated, 0u);
}

TEST(CudaCachingAllocator, SmallBlocksSplitAndMerge) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  void* a = cache.allocate(1000, stream(1));
  void* b = cache.allocate(1000, stream(1));
  void* c = cache.allocate(600 * kKiB, stream(1));
  // One 2 MiB segment, carved in address order in blocks rounded up to 512 bytes.
  EXPECT_EQ(source.allocations, 1);
  EXPECT_EQ(cache.stats().reserved, CachingAllocator::kSmallSegment);
  EXPECT_EQ(at(b), at(a) + 1024);
  EXPECT_EQ(at(c), at(b) + 1024);
  EXPECT_EQ(cache.stats().allocated, 2048 + 600 * kKiB);
  // a and b merge once both are free: a block of their joint size fits at a.
  cache.release(a);
  cache.release(b);
  void* joint = cache.allocate(2048, stream(1));
  EXPECT_EQ(joint, a);
  // c merges with the rest of the segment: a block of everything after a's 2048 bytes fits.
  cache.release(c);
  void* rest = cache.allocate(CachingAllocator::kSmallBlock, stream(1));
  EXPECT_EQ(rest, c);
  EXPECT_EQ(source.allocations, 1);
  cache.release(joint);
  cache.release(rest);
  // The whole segment is one free block again, so it goes back to the source.
  cache.empty_cache();
  EXPECT_EQ(source.releases, 1);
  EXPECT_EQ(cache.stats().reserved, 0u);
  EXPECT_EQ(source.held(), 0u);
}

TEST(CudaCachingAllocator, LargeBlocksSplitAndMerge) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  void* a = cache.allocate(3 * kMiB, stream(1));
  void* b = cache.allocate(5 * kMiB, stream(1));
  // Both from one 20 MiB segment; the last 12 MiB are a free block that fits exactly.
  EXPECT_EQ(cache.stats().reserved, CachingAllocator::kLargeSegment);
  EXPECT_EQ(at(b), at(a) + 3 * kMiB);
  void* c = cache.allocate(12 * kMiB, stream(1));
  EXPECT_EQ(at(c), at(b) + 5 * kMiB);
  EXPECT_EQ(source.allocations, 1);
  cache.release(b);
  // b alone (5 MiB) cannot hold 8 MiB, so a new segment: 8 MiB is below the shared size.
  void* d = cache.allocate(8 * kMiB, stream(1));
  EXPECT_EQ(source.allocations, 2);
  cache.release(d);
  cache.release(a);
  // a merged with b: 8 MiB fit at a again; best fit prefers it over the 20 MiB free segment.
  void* e = cache.allocate(8 * kMiB, stream(1));
  EXPECT_EQ(e, a);
  EXPECT_EQ(source.allocations, 2);
  // A large block keeps a remainder of 1 MiB or less instead of splitting it off.
  void* f = cache.allocate(19 * kMiB + 512 * kKiB, stream(1));
  EXPECT_EQ(cache.stats().allocated, 8 * kMiB + 12 * kMiB + CachingAllocator::kLargeSegment);
  // A block of its own segment beyond the shared size, rounded up to 2 MiB.
  void* g = cache.allocate(33 * kMiB, stream(1));
  EXPECT_EQ(cache.stats().reserved, 2 * CachingAllocator::kLargeSegment + 34 * kMiB);
  for (void* p : {c, e, f, g}) cache.release(p);
  cache.empty_cache();
  EXPECT_EQ(source.releases, 3);
  EXPECT_EQ(source.held(), 0u);
}

TEST(CudaCachingAllocator, StreamsKeepTheirOwnBlocks) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  void* a = cache.allocate(4 * kMiB, stream(1));
  cache.release(a);
  // Another stream may still be behind: it gets memory of its own.
  void* b = cache.allocate(4 * kMiB, stream(2));
  EXPECT_NE(b, a);
  EXPECT_EQ(source.allocations, 2);
  void* c = cache.allocate(4 * kMiB, stream(1));
  EXPECT_EQ(c, a);
  EXPECT_EQ(cache.reserved(stream(1)), CachingAllocator::kLargeSegment);
  EXPECT_EQ(cache.reserved(stream(2)), CachingAllocator::kLargeSegment);
  EXPECT_EQ(cache.reserved(stream(3)), 0u);
  cache.release(b);
  cache.release(c);
}

TEST(CudaCachingAllocator, BlocksUsedOnOtherStreamsWaitForTheirEvents) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  void* p = cache.allocate(CachingAllocator::kSmallBlock, stream(1));
  cache.record_use(at(p) + 100, stream(2));  // anywhere inside the block
  cache.record_use(p, stream(2));            // noted once
  cache.record_use(p, stream(1));            // its own stream needs no event
  cache.release(p);
  ASSERT_EQ(source.recorded, std::vector<void*>{stream(2)});
  // Until stream 2 has passed the event, p stays out of use: the other half of the segment.
  void* q = cache.allocate(CachingAllocator::kSmallBlock, stream(1));
  EXPECT_EQ(at(q), at(p) + CachingAllocator::kSmallBlock);
  cache.release(q);
  void* r = cache.allocate(CachingAllocator::kSmallBlock, stream(1));
  EXPECT_EQ(r, q);
  cache.release(r);
  source.complete_events();
  // p is free again and merged with q: the whole segment fits at p.
  void* whole = cache.allocate(CachingAllocator::kSmallSegment, stream(1));
  EXPECT_NE(whole, p);  // 2 MiB is a large block: it comes from the large pool
  void* s = cache.allocate(CachingAllocator::kSmallBlock + 512, stream(1));
  EXPECT_NE(s, p);
  void* t = cache.allocate(CachingAllocator::kSmallBlock, stream(1));
  EXPECT_EQ(t, p);
  EXPECT_EQ(source.destroyed_events, 1);
  void* u = cache.allocate(CachingAllocator::kSmallBlock, stream(1));
  EXPECT_EQ(u, q);
  for (void* x : {whole, s, t, u}) cache.release(x);
  EXPECT_THROW(cache.record_use(p, stream(2)), std::invalid_argument);
  EXPECT_THROW(cache.release(p), std::invalid_argument);
}

TEST(CudaCachingAllocator, RandomLiveBlocksNeverOverlap) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  std::mt19937_64 rng(20240611);
  struct Live {
    size_t bytes;
    void* stream;
    unsigned char tag;
  };
  std::map<char*, Live> live;
  auto overlaps = [&](char* p, size_t bytes) {
    const size_t len = std::max<size_t>(bytes, 1);
    auto next = live.lower_bound(p);
    if (next != live.end() && next->first < p + len) return true;
    if (next == live.begin()) return false;
    auto prev = std::prev(next);
    return prev->first + std::max<size_t>(prev->second.bytes, 1) > p;
  };
  auto release = [&](std::map<char*, Live>::iterator it) {
    // The first and last bytes still hold the block's tag: nobody else wrote there.
    const Live& l = it->second;
    if (l.bytes > 0) {
      EXPECT_EQ(static_cast<unsigned char>(it->first[0]), l.tag);
      EXPECT_EQ(static_cast<unsigned char>(it->first[l.bytes - 1]), l.tag);
    }
    if (rng() % 8 == 0) cache.record_use(it->first, stream(static_cast<int>(rng() % 3)));
    cache.release(it->first);
    live.erase(it);
  };
  for (int op = 0; op < 20000; ++op) {
    if (live.empty() || (live.size() < 200 && rng() % 2 == 0)) {
      const int kind = static_cast<int>(rng() % 10);
      const size_t bytes = kind < 7   ? rng() % (64 * kKiB)
                           : kind < 9 ? rng() % (2 * kMiB)
                                      : rng() % (40 * kMiB);
      void* s = stream(static_cast<int>(rng() % 3));
      char* p = at(cache.allocate(bytes, s));
      ASSERT_FALSE(overlaps(p, bytes)) << "op " << op;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
      const auto tag = static_cast<unsigned char>(op);
      if (bytes > 0) {
        p[0] = static_cast<char>(tag);
        p[bytes - 1] = static_cast<char>(tag);
      }
      live[p] = {bytes, s, tag};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      release(it);
    }
    if (rng() % 50 == 0) source.complete_events();
  }
  while (!live.empty()) release(live.begin());
  cache.empty_cache();
  const MemoryStats stats = cache.stats();
  EXPECT_EQ(stats.allocated, 0u);
  EXPECT_EQ(stats.reserved, 0u);
  EXPECT_EQ(stats.segments, 0u);
  EXPECT_EQ(stats.source_releases, stats.source_allocations);
  EXPECT_EQ(source.held(), 0u);
  EXPECT_EQ(static_cast<size_t>(source.destroyed_events), source.recorded.size());
}

TEST(CudaCachingAllocator, OutOfMemoryFreesTheCacheAndRetries) {
  FakeSource source(48 * kMiB);
  CachingAllocator cache(source, "fake");
  void* a = cache.allocate(30 * kMiB, stream(1));
  cache.release(a);  // cached for stream 1
  // Stream 2's 30 MiB do not fit beside the cached 30 MiB: the cache goes back, then it fits.
  void* b = cache.allocate(30 * kMiB, stream(2));
  EXPECT_EQ(source.releases, 1);
  EXPECT_GE(source.synchronizations, 1);
  EXPECT_EQ(cache.stats().reserved, 30 * kMiB);
  // A segment of the shared size (20 MiB) does not fit either; one of just the block does.
  void* c = cache.allocate(5 * kMiB, stream(2));
  EXPECT_EQ(cache.stats().reserved, 35 * kMiB);
  try {
    cache.allocate(30 * kMiB, stream(2));
    FAIL() << "allocated beyond the source's capacity";
  } catch (const std::bad_alloc& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("fake: out of memory allocating 31457280 bytes"), std::string::npos)
        << message;
    EXPECT_NE(message.find("36700160 bytes reserved"), std::string::npos) << message;
    EXPECT_NE(message.find("cached"), std::string::npos) << message;
  }
  cache.release(b);
  cache.release(c);
}

TEST(CudaCachingAllocator, StreamLimit) {
  FakeSource source;
  CachingAllocator cache(source, "fake");
  cache.set_limit(stream(1), 4 * kMiB);
  void* a = cache.allocate(kMiB, stream(1));  // a 2 MiB small segment
  // A 20 MiB segment would pass the limit: one of the block's own size.
  void* b = cache.allocate(3 * kMiB / 2, stream(1));
  EXPECT_EQ(cache.reserved(stream(1)), 2 * kMiB + 3 * kMiB / 2);
  void* c = cache.allocate(kMiB, stream(1));  // the other half of the small segment
  EXPECT_EQ(cache.reserved(stream(1)), 2 * kMiB + 3 * kMiB / 2);
  EXPECT_THROW(cache.allocate(kMiB, stream(1)), OutOfMemory);
  // The limit is the stream's: another stream allocates freely.
  void* d = cache.allocate(kMiB, stream(2));
  // Freed cached segments make room under the limit.
  cache.release(b);
  void* e = cache.allocate(2 * kMiB, stream(1));
  EXPECT_EQ(cache.reserved(stream(1)), 4 * kMiB);
  for (void* p : {a, c, d, e}) cache.release(p);
}

}  // namespace
}  // namespace graft::cuda
