// The capacity that graft's caches of oneDNN primitives (LruCache, exec/lru_cache.h) follow.
//
// GRAFT_DNNL_CACHE_CAPACITY: how many oneDNN primitives each of graft's primitive caches keeps
// (one cache per kind of primitive: the convolutions' holds one entry per geometry and pass). A
// non-negative integer, read once; 0 keeps none (every call builds its primitive). Default 1024,
// the default of oneDNN's own DNNL_PRIMITIVE_CACHE_CAPACITY.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "exec/error.h"
#include "exec/lru_cache.h"

namespace graft::cpu {

// The capacity that `text` (GRAFT_DNNL_CACHE_CAPACITY's value) gives. Throws InvalidArgument
// naming the variable when it is not a non-negative integer.
inline std::size_t parse_primitive_cache_capacity(const std::string& text) {
  std::size_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end)
    throw InvalidArgument("GRAFT_DNNL_CACHE_CAPACITY is '" + text +
                          "': expected a non-negative integer, the number of oneDNN primitives "
                          "each cache keeps (default 1024)");
  return value;
}

namespace detail {

constexpr std::size_t kDefaultPrimitiveCacheCapacity = 1024;
// What set_primitive_cache_capacity stored; kCapacityFromEnvironment until it is called (a set
// capacity is clamped one below it, still more primitives than any process builds).
constexpr std::size_t kCapacityFromEnvironment = std::numeric_limits<std::size_t>::max();

inline std::atomic<std::size_t>& primitive_cache_capacity_setting() {
  static std::atomic<std::size_t> setting{kCapacityFromEnvironment};
  return setting;
}

}  // namespace detail

// The capacity of graft's primitive caches: the last set_primitive_cache_capacity, else
// GRAFT_DNNL_CACHE_CAPACITY (read on the first call), else 1024. Throws InvalidArgument when the
// variable holds no valid capacity and none was set.
inline std::size_t primitive_cache_capacity() {
  const std::size_t set = detail::primitive_cache_capacity_setting().load();
  if (set != detail::kCapacityFromEnvironment) return set;
  static const std::size_t from_environment = [] {
    const char* text = std::getenv("GRAFT_DNNL_CACHE_CAPACITY");
    return text ? parse_primitive_cache_capacity(text) : detail::kDefaultPrimitiveCacheCapacity;
  }();
  return from_environment;
}

// Overrides GRAFT_DNNL_CACHE_CAPACITY for the whole process; each primitive cache drops its
// least recently used entries past `capacity` on its next use.
inline void set_primitive_cache_capacity(std::size_t capacity) {
  detail::primitive_cache_capacity_setting().store(
      std::min(capacity, detail::kCapacityFromEnvironment - 1));
}

// A cache of oneDNN primitives: an LruCache whose capacity follows primitive_cache_capacity().
template <typename Key, typename Value>
class PrimitiveCache {
 public:
  // LruCache::find_or_build, after bringing the capacity up to date.
  template <typename Build>
  std::shared_ptr<Value> find_or_build(const Key& key, Build&& build) {
    cache_.set_capacity(primitive_cache_capacity());
    return cache_.find_or_build(key, std::forward<Build>(build));
  }

  // The number of primitives held, after bringing the capacity up to date.
  std::size_t size() {
    cache_.set_capacity(primitive_cache_capacity());
    return cache_.size();
  }

 private:
  LruCache<Key, Value> cache_{0};
};

}  // namespace graft::cpu
