// GlobalAveragePool, GlobalMaxPool and GlobalLpPool: one value per (image, channel) plane;
// the output keeps the spatial dims as 1.
#include <omp.h>

#include <cmath>
#include <limits>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/nn/conv_util.h"

namespace graft {
namespace {

enum class GlobalKind { Average, Max, Lp };

class GlobalPool : public Kernel {
 public:
  GlobalPool(const KernelInfo& info, GlobalKind kind)
      : kind_(kind), p_(kind == GlobalKind::Lp ? info.attr_int("p", 2) : 2) {
    if (p_ <= 0) info.fail("p must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Shape in = spatial_dims(x, ctx);
    Shape out_shape = {x.dim(0), x.dim(1)};
    out_shape.insert(out_shape.end(), in.size(), 1);
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    const int64_t planes = x.dim(0) * x.dim(1), size = shape_size(in);
    dispatch_float(x.dtype(), "GlobalPool", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = cpu::AccumulateType<T>;
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
#pragma omp parallel for if (planes * size > (1 << 15) && !omp_in_parallel())
      for (int64_t plane = 0; plane < planes; ++plane) {
        const T* v = xp + plane * size;
        Acc acc = kind_ == GlobalKind::Max ? -std::numeric_limits<Acc>::infinity() : Acc(0);
        for (int64_t i = 0; i < size; ++i) {
          const Acc e = static_cast<Acc>(v[i]);
          if (kind_ == GlobalKind::Average)
            acc += e;
          else if (kind_ == GlobalKind::Max)
            acc = e > acc || std::isnan(e) ? e : acc;
          else
            acc += p_ == 2 ? e * e : std::pow(std::abs(e), Acc(p_));
        }
        if (kind_ == GlobalKind::Average) acc /= static_cast<Acc>(size);
        if (kind_ == GlobalKind::Lp)
          acc = p_ == 2 ? std::sqrt(acc) : std::pow(acc, Acc(1) / Acc(p_));
        yp[plane] = static_cast<T>(acc);
      }
    });
  }

 private:
  GlobalKind kind_;
  int64_t p_;
};

KernelFactory global_factory(GlobalKind kind) {
  return [kind](const KernelInfo& info) { return std::make_unique<GlobalPool>(info, kind); };
}

}  // namespace

GRAFT_CPU_KERNELS(global_pool) {
  reg.add(
      {"", "GlobalAveragePool", 1, 1 << 30, kFloatTypes, 0, global_factory(GlobalKind::Average)});
  reg.add({"", "GlobalMaxPool", 1, 1 << 30, kFloatTypes, 0, global_factory(GlobalKind::Max)});
  reg.add({"", "GlobalLpPool", 2, 1 << 30, kFloatTypes, 0, global_factory(GlobalKind::Lp)});
}

}  // namespace graft
