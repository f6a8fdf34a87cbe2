#include "exec/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>

#include "exec/checked.h"
#include "exec/error.h"
#include "exec/memory_limit.h"

namespace graft {

int64_t shape_size(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) {
      throw InvalidArgument("shape " + shape_to_string(shape) +
                            " has more elements than a 64-bit count holds");
    }
  }
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

Shape broadcast_shapes(const std::vector<Shape>& shapes, const std::string& who) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape& s : shapes) {
    const size_t lead = rank - s.size();
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t& o = out[lead + d];
      if (s[d] == o || s[d] == 1) continue;
      if (o != 1) {
        std::string listed;
        for (size_t i = 0; i < shapes.size(); ++i) {
          if (i > 0) listed += i + 1 == shapes.size() ? " and " : ", ";
          listed += shape_to_string(shapes[i]);
        }
        throw InvalidArgument((who.empty() ? "" : who + ": ") + "shapes " + listed +
                              " cannot be broadcast");
      }
      o = s[d];
    }
  }
  return out;
}

namespace {

bool poison_unspecified() {
  static const bool poison = [] {
    const char* v = std::getenv("GRAFT_POISON_OUTPUTS");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  return poison;
}

// `shape`, or InvalidArgument when a dimension is negative or its element count overflows.
Shape checked(Shape shape) {
  for (int64_t d : shape) {
    if (d < 0)
      throw InvalidArgument("tensor shape " + shape_to_string(shape) + " has a negative dimension");
  }
  shape_size(shape);
  return shape;
}

// Refuses the allocation of a tensor of `dtype` and `shape` from `allocator` (checked()) when
// its bytes overflow or pass the memory limit; returns its element count.
int64_t admit(DType dtype, const Shape& shape, const Allocator& allocator) {
  const int64_t count = shape_size(shape);
  size_t bytes = 0;
  const bool overflow =
      __builtin_mul_overflow(static_cast<size_t>(count), dtype_size(dtype), &bytes);
  if (overflow || !within_memory_limit(bytes, allocator)) {
    const std::string what =
        std::string("a ") + dtype_name(dtype) + " tensor of shape " + shape_to_string(shape);
    if (overflow) {
      throw InvalidArgument(what + ": " + std::to_string(count) + " elements of " +
                            std::to_string(dtype_size(dtype)) + " bytes overflow a byte count");
    }
    throw_memory_limit(bytes, allocator, what);
  }
  return count;
}

}  // namespace

Buffer::Buffer(DType dtype, int64_t count, Allocator& allocator, Init init)
    : dtype_(dtype), count_(count), allocator_(&allocator) {
  const size_t bytes = checked_byte_count(count, dtype_size(dtype), "a tensor buffer's bytes");
  if (dtype == DType::String && !allocator.on_host()) {
    throw InvalidArgument(std::string("string tensors cannot live in ") + allocator.name() +
                          " memory");
  }
  data_ = allocator.allocate(bytes);
  if (dtype == DType::String) {
    auto* s = static_cast<std::string*>(data_);
    for (int64_t i = 0; i < count; ++i) new (s + i) std::string();
  } else if (init == Init::Zero) {
    allocator.fill(data_, 0, bytes);
  } else if (poison_unspecified()) {
    allocator.fill(data_, 0xFF, bytes);
  }
}

Buffer::Buffer(void* data, std::shared_ptr<void> keep_alive)
    : data_(data), keep_alive_(std::move(keep_alive)) {}

Buffer::Buffer(void* data, Allocator& allocator, std::shared_ptr<void> keep_alive)
    : data_(data), allocator_(&allocator), keep_alive_(std::move(keep_alive)) {}

Buffer::Buffer(void* data, size_t bytes, Allocator& allocator, std::shared_ptr<void> owner)
    : data_(data), allocator_(&allocator), keep_alive_(std::move(owner)) {
  if (poison_unspecified()) allocator.fill(data_, 0xFF, bytes);
}

Buffer::~Buffer() {
  if (keep_alive_) return;
  if (dtype_ == DType::String) {
    auto* s = static_cast<std::string*>(data_);
    for (int64_t i = 0; i < count_; ++i) s[i].~basic_string();
  }
  allocator_->release(data_, static_cast<size_t>(count_) * dtype_size(dtype_));
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(checked(std::move(shape))) {
  buffer_ = std::make_shared<Buffer>(dtype_, admit(dtype_, shape_, cpu_allocator()));
}

Tensor Tensor::empty(DType dtype, Shape shape, Allocator& allocator) {
  shape = checked(std::move(shape));
  const int64_t count = admit(dtype, shape, allocator);
  return Tensor(dtype, std::move(shape),
                std::make_shared<Buffer>(dtype, count, allocator, Buffer::Init::Unspecified));
}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset_bytes)
    : dtype_(dtype), shape_(std::move(shape)), buffer_(std::move(buffer)), offset_(offset_bytes) {}

void* Tensor::raw() const {
  if (!buffer_) return nullptr;
  return static_cast<char*>(buffer_->data()) + offset_;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_size(shape) != size()) {
    throw InvalidArgument("cannot view a tensor of shape " + shape_to_string(shape_) + " as " +
                          shape_to_string(shape));
  }
  return Tensor(dtype_, std::move(shape), buffer_, offset_);
}

Tensor Tensor::clone() const {
  if (buffer_ && !buffer_->on_host()) {
    throw InvalidArgument(std::string("cannot clone a tensor in ") + buffer_->allocator()->name() +
                          " memory on the host");
  }
  Tensor out = empty(dtype_, shape_);
  if (dtype_ == DType::String) {
    auto src = span<std::string>();
    auto dst = out.span<std::string>();
    for (size_t i = 0; i < src.size(); ++i) dst[i] = src[i];
  } else if (nbytes() > 0) {
    std::memcpy(out.raw(), raw(), nbytes());
  }
  return out;
}

Tensor Tensor::to(Allocator& allocator) const {
  if (!buffer_ || buffer_->allocator() == &allocator) return *this;
  if (dtype_ == DType::String && on_host() && allocator.on_host()) {
    Tensor out = empty(dtype_, shape_, allocator);
    auto src = span<std::string>();
    auto dst = out.span<std::string>();
    for (size_t i = 0; i < src.size(); ++i) dst[i] = src[i];
    return out;
  }
  if (!on_host() && !allocator.on_host()) return to_host().to(allocator);
  Tensor out = empty(dtype_, shape_, allocator);
  if (on_host()) {
    allocator.copy_from_host(out.raw(), raw(), nbytes());
  } else {
    buffer_->allocator()->copy_to_host(out.raw(), raw(), nbytes());
  }
  return out;
}

Tensor Tensor::to_host() const { return on_host() ? *this : to(cpu_allocator()); }

double Tensor::scalar_as_double(int64_t i) const {
  if (i < 0 || i >= size()) throw InvalidArgument("element index out of range");
  return dispatch_numeric(dtype_, "scalar read", [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    return static_cast<double>(data<T>()[i]);
  });
}

int64_t Tensor::scalar_as_int(int64_t i) const {
  if (dtype_ == DType::Int64) {
    if (i < 0 || i >= size()) throw InvalidArgument("element index out of range");
    return data<int64_t>()[i];
  }
  return static_cast<int64_t>(scalar_as_double(i));
}

std::vector<int64_t> Tensor::to_int_vector() const {
  std::vector<int64_t> out(static_cast<size_t>(size()));
  for (int64_t i = 0; i < size(); ++i) out[static_cast<size_t>(i)] = scalar_as_int(i);
  return out;
}

}  // namespace graft
