// A least-recently-used cache of shared values: the caches of prepared library calls (oneDNN
// primitives, cuBLASLt plans, cuDNN algorithms) keyed by geometry.
#pragma once

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace graft {

// Maps keys to shared values, keeping at most `capacity` of them: inserting past it drops the
// entry used least recently. A dropped value lives on for as long as a caller holds it. Every
// method may be called from several threads at once.
template <typename Key, typename Value>
class LruCache {
 public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity) {}

  // The value under `key`, now the most recently used; null when there is none.
  std::shared_ptr<Value> find(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return find_locked(key);
  }

  // Stores `value` under `key` (replacing any value there) as the most recently used, dropping
  // the least recently used entries past the capacity. Returns `value`.
  std::shared_ptr<Value> insert(const Key& key, std::shared_ptr<Value> value) {
    std::lock_guard<std::mutex> lock(mutex_);
    return insert_locked(key, std::move(value));
  }

  // The value under `key`, or else the one `build()` returns (a std::shared_ptr<Value>), stored.
  // `build` runs under the cache's lock, so each key is built once however many threads ask; an
  // exception from it propagates and stores nothing.
  template <typename Build>
  std::shared_ptr<Value> find_or_build(const Key& key, Build&& build) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto found = find_locked(key)) return found;
    return insert_locked(key, build());
  }

  // Drops the least recently used entries past the new capacity at once.
  void set_capacity(std::size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    capacity_ = capacity;
    evict_past_capacity();
  }

  std::size_t capacity() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return capacity_;
  }

  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
  }

 private:
  using Entries = std::list<std::pair<Key, std::shared_ptr<Value>>>;

  std::shared_ptr<Value> find_locked(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return it->second->second;
  }

  std::shared_ptr<Value> insert_locked(const Key& key, std::shared_ptr<Value> value) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      entries_.erase(it->second);
      index_.erase(it);
    }
    entries_.emplace_front(key, value);
    index_.emplace(key, entries_.begin());
    evict_past_capacity();
    return value;
  }

  void evict_past_capacity() {
    while (entries_.size() > capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
  }

  mutable std::mutex mutex_;
  std::size_t capacity_;
  Entries entries_;  // the most recently used first
  std::map<Key, typename Entries::iterator> index_;
};

}  // namespace graft
