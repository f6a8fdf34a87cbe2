// Tensor: a dtype, a shape and a reference-counted buffer. Copying a Tensor shares the buffer
// (like a NumPy view); clone() copies the data.
#pragma once

#include "ir/api.h"

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "exec/allocator.h"
#include "exec/dtype.h"

namespace graft {

using Shape = std::vector<int64_t>;

GRAFT_API int64_t shape_size(const Shape& shape);           // product of dims; 1 for a scalar
GRAFT_API std::string shape_to_string(const Shape& shape);  // "[2, 3, 4]"
// The NumPy broadcast shape of `shapes` (ranks right-aligned, each dim equal or 1). Throws
// InvalidArgument "<who>: shapes [2, 3] and [4] cannot be broadcast" when they do not agree;
// `who` is usually ctx.describe() and may be empty.
GRAFT_API Shape broadcast_shapes(const std::vector<Shape>& shapes, const std::string& who = "");

// A block of memory (host memory unless its allocator says otherwise) that knows how to destroy
// what it holds (std::string elements need their destructors run).
class GRAFT_API Buffer {
 public:
  // What a new buffer holds: zeros, or whatever the memory held before (to be overwritten).
  enum class Init { Zero, Unspecified };
  // Allocates `count` elements of `dtype` from `allocator`, zero-filled unless `init` says
  // otherwise (strings are always constructed empty).
  Buffer(DType dtype, int64_t count, Allocator& allocator = cpu_allocator(),
         Init init = Init::Zero);
  // Wraps memory owned elsewhere; `keep_alive` holds its owner.
  Buffer(void* data, std::shared_ptr<void> keep_alive);
  // Wraps memory of the kind `allocator` hands out (a device's) that another library owns and
  // `keep_alive` holds: the buffer reports that allocator but never releases through it, and the
  // bytes stay as they are (a tensor shared through DLPack).
  Buffer(void* data, Allocator& allocator, std::shared_ptr<void> keep_alive);
  // Wraps `bytes` bytes at `data`, a part of a block from `allocator` that `owner` holds (a
  // memory plan's arena): the buffer reports that allocator and never releases the memory. The
  // bytes are unspecified, as with Init::Unspecified.
  Buffer(void* data, size_t bytes, Allocator& allocator, std::shared_ptr<void> owner);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  // The allocator the memory came from; nullptr for wrapped memory (host memory owned
  // elsewhere).
  Allocator* allocator() const { return allocator_; }
  // Whether the CPU may read and write the memory (not a device's).
  bool on_host() const { return allocator_ == nullptr || allocator_->on_host(); }

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::Undefined;
  int64_t count_ = 0;
  Allocator* allocator_ = nullptr;
  std::shared_ptr<void> keep_alive_;
};

class GRAFT_API Tensor {
 public:
  Tensor() = default;
  // Allocates a zero-filled tensor.
  Tensor(DType dtype, Shape shape);
  // Allocates a tensor whose elements are unspecified until written (torch.empty): for outputs
  // a kernel overwrites whole, where zero-filling first would cost a pass over the memory.
  // With GRAFT_POISON_OUTPUTS=1 in the environment the bytes are set to 0xFF instead (NaN for
  // floating point), so a kernel that reads an element before writing it shows in its results.
  // `allocator` says where (a device provider's memory, for its kernels).
  static Tensor empty(DType dtype, Shape shape, Allocator& allocator = cpu_allocator());
  // Shares `buffer`, starting `offset_bytes` in.
  Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset_bytes = 0);

  bool defined() const { return dtype_ != DType::Undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t axis) const { return shape_[static_cast<size_t>(axis)]; }
  int64_t size() const { return shape_size(shape_); }
  size_t nbytes() const { return static_cast<size_t>(size()) * dtype_size(dtype_); }

  void* raw() const;
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }
  template <typename T>
  std::span<T> span() const {
    return {data<T>(), static_cast<size_t>(size())};
  }

  // Same buffer, new shape of the same element count. Throws std::invalid_argument otherwise.
  Tensor reshaped(Shape shape) const;
  // Deep copy into a fresh host buffer; throws InvalidArgument for a tensor in device memory
  // (to_host() copies one out).
  Tensor clone() const;
  // The tensor in `allocator`'s memory: itself (sharing the buffer) when it is already there,
  // else a copy made through the allocators' copy_from_host / copy_to_host (between two devices,
  // by way of the host). Library code moves tensors with it without knowing the device. Throws
  // InvalidArgument for a string tensor bound for device memory, NotImplemented when a device
  // allocator has no copies.
  Tensor to(Allocator& allocator) const;
  // The tensor in host memory: itself when the CPU may already read it, else a copy in
  // cpu_allocator()'s memory. Throws as to() does.
  Tensor to_host() const;
  // Whether the CPU may read and write the elements (no buffer, wrapped memory, or a host
  // allocator's).
  bool on_host() const { return !buffer_ || buffer_->on_host(); }
  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }

  // Reads element `i` of any numeric or bool tensor as double / int64 (used for shape inputs,
  // scalars and attributes given as tensors).
  double scalar_as_double(int64_t i = 0) const;
  int64_t scalar_as_int(int64_t i = 0) const;
  std::vector<int64_t> to_int_vector() const;

 private:
  DType dtype_ = DType::Undefined;
  Shape shape_;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
};

}  // namespace graft

#include "exec/dispatch.h"
