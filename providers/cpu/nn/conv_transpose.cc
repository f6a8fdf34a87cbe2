// ConvTranspose: the adjoint of Conv. Per (image, group) a GEMM W^T * X gives columns that col2im
// scatters into the output. Output shape and pads follow the ONNX reference: output_shape (or
// input * stride under SAME auto_pad) fixes the total padding, which auto_pad splits.
#include <omp.h>

#include <memory>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/nn/conv_util.h"

namespace graft {
namespace {

struct TransposeProblem {
  int64_t batch, channels, maps, group;
  // Geometry of the forward conv from the output (g.in) to the input (g.out).
  WindowGeometry g;
};

// y[N, M, out...] = conv_transpose(x[N, C, in...], w[C, M/G, k...]) + b[M].
template <typename T>
void run_conv_transpose(const TransposeProblem& p, const T* x, const T* w, const T* b, T* y) {
  const WindowGeometry& g = p.g;
  const int64_t cg = p.channels / p.group, mg = p.maps / p.group;
  const int64_t kernel_size = shape_size(g.kernel), x_size = shape_size(g.out);
  const int64_t y_size = shape_size(g.in), depth = mg * kernel_size;
  const int64_t units = p.batch * p.group;
  auto run_unit = [&](int64_t u, T* col) {
    const int64_t n = u / p.group, gi = u % p.group;
    const T* xg = x + (n * p.channels + gi * cg) * x_size;
    T* yg = y + (n * p.maps + gi * mg) * y_size;
    cpu::gemm<T>(true, false, depth, x_size, cg, w + gi * cg * depth, xg, col);
    cpu::col2im(col, mg, g, yg);
    if (b != nullptr)
      for (int64_t m = 0; m < mg; ++m) {
        const T bias = b[gi * mg + m];
        T* row = yg + m * y_size;
        for (int64_t j = 0; j < y_size; ++j) row[j] += bias;
      }
  };
  const size_t col_size = static_cast<size_t>(depth * x_size);
  if (units > 1 && units >= omp_get_max_threads()) {
#pragma omp parallel
    {
      // Scratch every element of which is written before it is read.
      const auto col = std::make_unique_for_overwrite<T[]>(col_size);
#pragma omp for schedule(dynamic)
      for (int64_t u = 0; u < units; ++u) run_unit(u, col.get());
    }
  } else {
    const auto col = std::make_unique_for_overwrite<T[]>(col_size);
    for (int64_t u = 0; u < units; ++u) run_unit(u, col.get());
  }
}

class ConvTranspose : public Kernel {
 public:
  explicit ConvTranspose(const KernelInfo& info)
      : attrs_(info),
        group_(info.attr_int("group", 1)),
        output_padding_(info.attr_ints("output_padding")),
        output_shape_(info.attr_ints("output_shape")) {
    if (group_ <= 0) info.fail("group must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Shape in = spatial_dims(x, ctx);
    const size_t n = in.size();
    if (n > kMaxSpatialDims) ctx.fail("too many spatial dims");
    if (w.rank() != x.rank() || w.dtype() != x.dtype())
      ctx.fail("W " + shape_to_string(w.shape()) + " must have the rank and dtype of X " +
               shape_to_string(x.shape()));
    TransposeProblem p{x.dim(0), x.dim(1), w.dim(1) * group_, group_, {}};
    if (w.dim(0) != p.channels || p.channels % group_ != 0)
      ctx.fail("X has " + std::to_string(p.channels) + " channels and W " +
               shape_to_string(w.shape()) + ", which does not fit group " + std::to_string(group_));
    const Shape kernel(w.shape().begin() + 2, w.shape().end());
    if (!attrs_.kernel_shape.empty() && attrs_.kernel_shape != kernel)
      ctx.fail("kernel_shape does not match W's spatial dims");

    p.g = attrs_.resolve_transposed(in, kernel, output_padding_, output_shape_, ctx);
    const WindowGeometry& g = p.g;
    const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (b != nullptr && (b->rank() != 1 || b->dim(0) != p.maps || b->dtype() != x.dtype()))
      ctx.fail("B must be a 1-D tensor of " + std::to_string(p.maps) + " elements of X's dtype");
    Shape out_shape = {p.batch, p.maps};
    out_shape.insert(out_shape.end(), g.in.begin(), g.in.end());
    Tensor& y = ctx.output_zeroed(0, x.dtype(), out_shape);
    if (y.size() == 0 || x.size() == 0) return;

    const bool ran = cpu::run_in_float(
        x, w, b, y, [&](const auto* xs, const auto* ws, const auto* bs, auto* ys) {
          run_conv_transpose(p, xs, ws, bs, ys);
        });
    if (!ran) ctx.fail(std::string("unsupported dtype ") + dtype_name(x.dtype()));
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
  Shape output_padding_;
  Shape output_shape_;
};

}  // namespace

GRAFT_CPU_KERNELS(conv_transpose) {
  reg.add({"", "ConvTranspose", 1, 1 << 30, kFloatTypes, 0, make<ConvTranspose>});
}

}  // namespace graft
