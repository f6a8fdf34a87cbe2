// Col2Im: sums sliding column blocks [N, C * prod(block_shape), L] back into images
// [N, C, *image_shape], the inverse layout of im2col (PyTorch's fold), in any number of dims.
#include <complex>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

template <typename F>
decltype(auto) dispatch_col2im(DType dtype, F&& f) {
  if (dtype == DType::Complex64) return f(TypeTag<std::complex<float>>{});
  if (dtype == DType::Complex128) return f(TypeTag<std::complex<double>>{});
  return dispatch_numeric(dtype, "Col2Im", std::forward<F>(f));
}

class Col2Im final : public Kernel {
 public:
  explicit Col2Im(const KernelInfo& info)
      : dilations_(info.attr_ints("dilations")),
        pads_(info.attr_ints("pads")),
        strides_(info.attr_ints("strides")) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const std::vector<int64_t> image = ctx.input(1).to_int_vector();
    const std::vector<int64_t> block = ctx.input(2).to_int_vector();
    const size_t dims = image.size();
    if (dims == 0 || block.size() != dims) {
      ctx.fail("image_shape and block_shape must be non-empty and of equal length");
    }
    std::vector<int64_t> dilations = dilations_, pads = pads_, strides = strides_;
    if (dilations.empty()) dilations.assign(dims, 1);
    if (pads.empty()) pads.assign(2 * dims, 0);
    if (strides.empty()) strides.assign(dims, 1);
    if (dilations.size() != dims || strides.size() != dims || pads.size() != 2 * dims) {
      ctx.fail("dilations, strides and pads must have 1, 1 and 2 entries per image dim");
    }
    if (x.rank() != 3) ctx.fail("input must have rank 3, got " + shape_to_string(x.shape()));
    int64_t block_size = 1;
    for (size_t d = 0; d < dims; ++d) {
      if (block[d] <= 0 || image[d] < 0 || dilations[d] <= 0 || strides[d] <= 0) {
        ctx.fail("block_shape, dilations and strides must be positive");
      }
      block_size *= block[d];
    }
    if (x.dim(1) % block_size != 0) {
      ctx.fail("input dim 1 (" + std::to_string(x.dim(1)) +
               ") is not a multiple of the block size " + std::to_string(block_size));
    }
    std::vector<int64_t> cols(dims);
    int64_t num_cols = 1;
    for (size_t d = 0; d < dims; ++d) {
      cols[d] =
          (image[d] + pads[d] + pads[dims + d] - dilations[d] * (block[d] - 1) - 1) / strides[d] +
          1;
      if (cols[d] <= 0) ctx.fail("the blocks do not fit in the padded image");
      num_cols *= cols[d];
    }
    if (x.dim(2) != num_cols) {
      ctx.fail("input dim 2 is " + std::to_string(x.dim(2)) + " but the image holds " +
               std::to_string(num_cols) + " blocks");
    }
    const int64_t batch = x.dim(0), channels = x.dim(1) / block_size;
    Shape out_shape = {batch, channels};
    out_shape.insert(out_shape.end(), image.begin(), image.end());
    Tensor& y = ctx.output_zeroed(0, x.dtype(), out_shape);
    const int64_t image_size = shape_size(Shape(image.begin(), image.end()));
    const std::vector<int64_t> image_strides = tensor_ops::contiguous_strides(image);
    dispatch_col2im(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
#pragma omp parallel for if (x.size() > tensor_ops::kParallelElements && batch * channels > 1)
      for (int64_t plane = 0; plane < batch * channels; ++plane) {
        T* out = dst + plane * image_size;
        std::vector<int64_t> offset(dims), col(dims);
        for (int64_t k = 0; k < block_size; ++k) {
          for (int64_t r = k, d = static_cast<int64_t>(dims) - 1; d >= 0; --d) {
            offset[static_cast<size_t>(d)] = r % block[static_cast<size_t>(d)];
            r /= block[static_cast<size_t>(d)];
          }
          const T* in = src + (plane * block_size + k) * num_cols;
          for (int64_t l = 0; l < num_cols; ++l) {
            int64_t at = 0;
            bool inside = true;
            for (int64_t r = l, d = static_cast<int64_t>(dims) - 1; d >= 0; --d) {
              const auto u = static_cast<size_t>(d);
              const int64_t pos = (r % cols[u]) * strides[u] - pads[u] + offset[u] * dilations[u];
              r /= cols[u];
              if (pos < 0 || pos >= image[u]) {
                inside = false;
                break;
              }
              at += pos * image_strides[u];
            }
            if (!inside) continue;
            if constexpr (std::is_same_v<T, bool>) {
              out[at] = out[at] || in[l];
            } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
              out[at] = T(static_cast<float>(out[at]) + static_cast<float>(in[l]));
            } else if constexpr (std::is_integral_v<T>) {
              using U = std::make_unsigned_t<T>;
              out[at] =
                  static_cast<T>(static_cast<U>(static_cast<U>(out[at]) + static_cast<U>(in[l])));
            } else {
              out[at] += in[l];
            }
          }
        }
      }
    });
  }

 private:
  std::vector<int64_t> dilations_, pads_, strides_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_col2im) { reg.add({"", "Col2Im", 18, 1 << 30, {}, 0, make<Col2Im>}); }

}  // namespace graft
