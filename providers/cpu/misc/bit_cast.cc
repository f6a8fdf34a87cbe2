// BitCast: reinterprets each element's bits as another type of the same bit width.
#include <cstring>

#include "exec/kernel.h"

namespace graft {
namespace {

// Sub-byte types are held one element per byte in the low bits (sign extended for int4 and
// int2), so their width is the packed one.
int bit_width(DType dtype) {
  switch (dtype) {
    case DType::Int4:
    case DType::UInt4:
    case DType::Float4E2M1:
      return 4;
    case DType::Int2:
    case DType::UInt2:
      return 2;
    default:
      return static_cast<int>(dtype_size(dtype)) * 8;
  }
}

class BitCast final : public Kernel {
 public:
  explicit BitCast(const KernelInfo& info) : to_(static_cast<DType>(info.required_int("to"))) {
    const auto code = static_cast<int>(to_);
    if (code < 1 || code > static_cast<int>(DType::Int2) || to_ == DType::String) {
      info.fail("cannot bit-cast to type " + std::to_string(code));
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() == DType::String) ctx.fail("cannot bit-cast a string tensor");
    const int bits = bit_width(x.dtype());
    if (bits != bit_width(to_)) {
      ctx.fail(std::string("input type ") + dtype_name(x.dtype()) + " (" + std::to_string(bits) +
               " bits) and target type " + dtype_name(to_) + " (" + std::to_string(bit_width(to_)) +
               " bits) differ in width");
    }
    Tensor& y = ctx.output(0, to_, x.shape());
    const int64_t n = x.size();
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    if (bits < 8) {
      const auto mask = static_cast<uint8_t>((1u << bits) - 1);
      const bool sign = to_ == DType::Int4 || to_ == DType::Int2;
      for (int64_t i = 0; i < n; ++i) {
        auto v = static_cast<uint8_t>(src[i] & mask);
        if (sign && (v & (1u << (bits - 1)))) v = static_cast<uint8_t>(v | ~mask);
        dst[i] = v;
      }
    } else if (to_ == DType::Bool) {
      // A bool holds only 0 or 1.
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0;
    } else if (n > 0) {
      std::memcpy(dst, src, x.nbytes());
    }
  }

 private:
  DType to_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_bit_cast) { reg.add({"", "BitCast", 26, 1 << 30, {}, 0, make<BitCast>}); }

}  // namespace graft
