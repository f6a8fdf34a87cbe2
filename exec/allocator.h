// Allocators hand out device memory for tensors. A provider exposes the allocator its kernels'
// outputs live in; the host one is cpu_allocator().
#pragma once

#include "ir/api.h"

#include <atomic>
#include <cstddef>
#include <string>

namespace graft {

// Where an allocator's memory is, as DLPack and onnxruntime's OrtValue.device_name() name it: host
// memory (pinned host memory included) is {"cpu", 0}, CUDA device 1's memory {"cuda", 1}.
struct MemoryDevice {
  std::string type = "cpu";
  int id = 0;
};

class GRAFT_API Allocator {
 public:
  virtual ~Allocator() = default;
  virtual const char* name() const = 0;
  // Returns at least `bytes` (a valid pointer even for 0) aligned to 64 bytes; throws
  // std::bad_alloc when memory is exhausted.
  virtual void* allocate(size_t bytes) = 0;
  // Gives back memory from allocate(); `bytes` is the size that was asked for.
  virtual void release(void* ptr, size_t bytes) = 0;
  // Whether the memory is host memory the CPU may read and write. Device memory (a CUDA
  // allocator's) is reached only through its provider's kernels; insert_device_copies puts copies
  // where a value crosses between host and device.
  virtual bool on_host() const { return true; }
  // Where the memory is. By default {"cpu", 0} for host memory and {name(), 0} for device memory;
  // a device allocator reports its device type and index.
  virtual MemoryDevice device() const;
  // Sets `bytes` bytes at `ptr` (from allocate()) to `byte`; device allocators override it.
  virtual void fill(void* ptr, int byte, size_t bytes);
  // Copies `bytes` bytes from host memory at `src` into this allocator's memory at `dst`, and
  // from this allocator's memory at `src` into host memory at `dst`; each returns once the bytes
  // are in place. Host allocators copy with memcpy; a device allocator overrides both (for one
  // that does not, they throw NotImplemented naming it).
  virtual void copy_from_host(void* dst, const void* src, size_t bytes);
  virtual void copy_to_host(void* dst, const void* src, size_t bytes);
  // Bytes currently handed out and the most ever handed out at once.
  size_t bytes_in_use() const { return in_use_.load(); }
  size_t peak_bytes() const { return peak_.load(); }

 protected:
  void note_allocate(size_t bytes);
  void note_release(size_t bytes) { in_use_ -= bytes; }

 private:
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
};

// Host memory, 64-byte aligned.
GRAFT_API Allocator& cpu_allocator();

}  // namespace graft
