// Dropout (opset 12 on) with a counter-based generator: Philox4x32-10 (Salmon et al., "Parallel
// Random Numbers: As Easy as 1, 2, 3", SC'11; the Random123 library's algorithm), written for both
// compilers so the host tests draw the same stream as the device.
//
// Element i is kept when the top 24 bits of word i % 4 of Philox(counter = (i / 4, offset),
// key = seed) are at least ceil(ratio * 2^24): its mask depends on (seed, offset, i) alone, so any
// launch shape gives the same mask. A node with a `seed` attribute uses it with offset 0 (the same
// mask every run, as the CPU provider's seeded Dropout); one without draws its key from graft's
// default generator when the kernel is built and takes a new offset from the backend each run.
// Kept elements are scaled by 1 / (1 - ratio) rounded to the compute type (float for the 16-bit
// floats), as on the CPU. The CPU provider draws from another generator, so the two agree on the
// contract, not on which elements are dropped.
#pragma once

#include <cmath>
#include <random>

#include "exec/generator.h"
#include "providers/cuda/kernels/backend.h"

namespace graft::cuda {

struct Philox4x32 {
  uint32_t word[4];
};

GRAFT_HD uint32_t mul_hi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Philox4x32 with 10 rounds: four random words from the 128-bit `counter` and the 64-bit `key`.
GRAFT_HD Philox4x32 philox4x32_10(Philox4x32 counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t c0 = counter.word[0], c1 = counter.word[1], c2 = counter.word[2], c3 = counter.word[3];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kWeyl0;
      key1 += kWeyl1;
    }
    const uint32_t hi0 = mul_hi32(kMul0, c0), lo0 = kMul0 * c0;
    const uint32_t hi1 = mul_hi32(kMul1, c2), lo1 = kMul1 * c2;
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

// Whether each of the four elements 4 * group .. 4 * group + 3 is kept.
struct DropoutDraw {
  uint32_t key0, key1;
  uint32_t offset0, offset1;
  uint32_t threshold;  // kept when (word >> 8) >= threshold

  GRAFT_HD Philox4x32 words(int64_t group) const {
    const auto g = static_cast<uint64_t>(group);
    const Philox4x32 counter = {
        {static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), offset0, offset1}};
    return philox4x32_10(counter, key0, key1);
  }
  GRAFT_HD bool keeps(uint32_t word) const { return (word >> 8) >= threshold; }
};

template <typename T>
struct DropoutFn {
  const T* x;
  T* y;
  bool* mask;  // nullptr when the node does not ask for it
  int64_t n;
  DropoutDraw draw;
  Acc<T> scale;
  GRAFT_HD void operator()(int64_t group) const {
    const Philox4x32 r = draw.words(group);
    for (int j = 0; j < 4; ++j) {
      const int64_t i = group * 4 + j;
      if (i >= n) return;
      const bool keep = draw.keeps(r.word[j]);
      y[i] = keep ? narrow<T>(widen(x[i]) * scale) : narrow<T>(0);
      if (mask != nullptr) mask[i] = keep;
    }
  }
};

// The drawing parameters for `ratio` in [0, 1].
inline DropoutDraw dropout_draw(uint64_t seed, uint64_t offset, double ratio) {
  return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
          static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
          static_cast<uint32_t>(std::ceil(ratio * 16777216.0))};
}

template <class B>
class DropoutKernel final : public DeviceKernel<B> {
 public:
  explicit DropoutKernel(const KernelInfo& info)
      : DeviceKernel<B>(info), seeded_(info.has_attr("seed")) {
    if (seeded_) {
      seed_ = static_cast<uint64_t>(info.attr_int("seed", 0));
    } else {
      default_generator().draw([&](std::mt19937_64& engine) { seed_ = engine(); });
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    // ratio and training_mode are host inputs (KernelDef::host_inputs).
    const double ratio = ctx.has_input(1) ? ctx.input(1).to_host().scalar_as_double() : 0.5;
    const bool training = ctx.has_input(2) && ctx.input(2).to_host().scalar_as_int() != 0;
    if (!(ratio >= 0.0 && ratio <= 1.0))
      ctx.fail("ratio must be in [0, 1], got " + std::to_string(ratio));
    const bool want_mask = ctx.num_outputs() > 1 && ctx.has_output(1);
    if (!training || ratio == 0.0) {
      ctx.set_output(0, Value(x));
      if (want_mask) {
        Tensor& mask = ctx.output(1, DType::Bool, x.shape());
        this->backend().fill(mask.raw(), 1, mask.nbytes());
      }
      return;
    }
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    bool* mask = want_mask ? ctx.output(1, DType::Bool, x.shape()).template data<bool>() : nullptr;
    const uint64_t offset = seeded_ ? 0 : this->backend().next_seed();
    const DropoutDraw draw = dropout_draw(seed_, offset, ratio);
    const double scale = ratio < 1.0 ? 1.0 / (1.0 - ratio) : 0.0;
    dispatch_device_float(x.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      this->backend().for_each(
          (x.size() + 3) / 4,
          DropoutFn<T>{x.data<T>(), y.data<T>(), mask, x.size(), draw, static_cast<Acc<T>>(scale)});
    });
  }

 private:
  bool seeded_;
  uint64_t seed_ = 0;
};

template <class B>
void register_dropout(KernelRegistry& reg) {
  reg.add({"", "Dropout", 12, 1 << 30, kDeviceFloatTypes, 0, make<DropoutKernel<B>>, {1, 2}});
}

}  // namespace graft::cuda
