// MaxUnpool: scatters pooled values back to the positions MaxPool's indices name. Indices are
// flat offsets into the unpooled shape the pooling attributes imply; a larger output_shape
// pads that result with zeros at the end of each dim.
#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft {
namespace {

class MaxUnpool final : public Kernel {
 public:
  explicit MaxUnpool(const KernelInfo& info)
      : kernel_shape_(info.attr_ints("kernel_shape")),
        pads_(info.attr_ints("pads")),
        strides_(info.attr_ints("strides")) {
    const size_t dims = kernel_shape_.size();
    if (dims == 0) info.fail("kernel_shape is required");
    if (pads_.empty()) pads_.assign(2 * dims, 0);
    if (strides_.empty()) strides_.assign(dims, 1);
    if (pads_.size() != 2 * dims || strides_.size() != dims) {
      info.fail("pads and strides must have 2 and 1 entries per kernel dim");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& indices = ctx.input(1);
    const size_t dims = kernel_shape_.size();
    if (static_cast<size_t>(x.rank()) != dims + 2) {
      ctx.fail("input rank " + std::to_string(x.rank()) + " does not match kernel_shape's " +
               std::to_string(dims) + " spatial dims");
    }
    if (indices.shape() != x.shape() || indices.dtype() != DType::Int64) {
      ctx.fail("indices must be int64 with the input's shape " + shape_to_string(x.shape()));
    }
    Shape inferred = {x.dim(0), x.dim(1)};
    for (size_t d = 0; d < dims; ++d) {
      inferred.push_back((x.dim(static_cast<int64_t>(d + 2)) - 1) * strides_[d] -
                         (pads_[d] + pads_[dims + d]) + kernel_shape_[d]);
      if (inferred.back() < 0) ctx.fail("pads are larger than the unpooled size");
    }
    Shape out_shape = inferred;
    if (ctx.has_input(2)) {
      out_shape = ctx.input(2).to_int_vector();
      if (out_shape.size() != inferred.size()) ctx.fail("output_shape has the wrong rank");
      for (size_t d = 0; d < inferred.size(); ++d) {
        if (out_shape[d] < inferred[d]) {
          ctx.fail("output_shape " + shape_to_string(out_shape) + " is smaller than the unpooled " +
                   shape_to_string(inferred));
        }
      }
    }
    Tensor& y = ctx.output_zeroed(0, x.dtype(), out_shape);
    const int64_t total = shape_size(inferred);
    const int64_t n = x.size();
    const int64_t* idx = indices.data<int64_t>();
    dispatch_by_size(x.dtype(), "MaxUnpool", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      for (int64_t k = 0; k < n; ++k) {
        int64_t at = idx[k];
        if (at < 0 || at >= total) {
          ctx.fail("index " + std::to_string(at) + " is out of range for the unpooled shape " +
                   shape_to_string(inferred));
        }
        if (out_shape != inferred) {
          int64_t offset = 0, stride = 1;
          for (size_t d = inferred.size(); d-- > 0;) {
            offset += (at % inferred[d]) * stride;
            at /= inferred[d];
            stride *= out_shape[d];
          }
          at = offset;
        }
        dst[at] = src[k];
      }
    });
  }

 private:
  std::vector<int64_t> kernel_shape_, pads_, strides_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_max_unpool) {
  const std::vector<DType> types = {DType::Float, DType::Double, DType::Float16, DType::BFloat16};
  reg.add({"", "MaxUnpool", 9, 1 << 30, types, 0, make<MaxUnpool>});
}

}  // namespace graft
