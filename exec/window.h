// Window geometry shared by every provider's Conv, ConvTranspose, pooling and their gradients:
// kernel, strides, dilations, pads (begin values then end values, as ONNX writes them) and the
// output spatial shape, with auto_pad and ceil_mode resolved.
#pragma once

#include <string>

#include "exec/kernel.h"
#include "exec/tensor.h"

namespace graft {

struct WindowGeometry {
  Shape in;         // input spatial dims
  Shape kernel;     // kernel spatial dims
  Shape strides;    // per spatial dim
  Shape dilations;  // per spatial dim
  Shape pads;       // 2 * spatial: begins, then ends
  Shape out;        // output spatial dims
  size_t rank() const { return in.size(); }
};

// The window attributes of a node, read once when the kernel is built.
struct WindowAttrs {
  std::string auto_pad;  // NOTSET, SAME_UPPER, SAME_LOWER or VALID
  Shape kernel_shape;    // empty when absent
  Shape strides, dilations, pads;
  bool ceil_mode = false;

  // Reads auto_pad, kernel_shape, strides, dilations, pads and ceil_mode; fails on an unknown
  // auto_pad.
  explicit WindowAttrs(const KernelInfo& info);

  // Geometry of a forward window op (Conv, pooling) over input spatial dims `in` with kernel
  // `kernel`. Fails with the node named when attributes and shapes disagree or the output would
  // be empty.
  WindowGeometry resolve(const Shape& in, const Shape& kernel, const KernelContext& ctx) const;

  // Geometry of ConvTranspose over input spatial dims `in`, as the forward convolution it is the
  // adjoint of: from the ConvTranspose output (g.in) to its input (g.out == in). The output dims
  // and pads follow the ONNX reference: `output_shape` (spatial dims, or with N and C leading),
  // or input * stride under SAME auto_pad, fixes the total padding, which auto_pad splits (a
  // split may come out negative when output_shape asks for more than the full output);
  // `output_padding` (empty: zeros) extends the end. Fails with the node named when attributes
  // and shapes disagree.
  WindowGeometry resolve_transposed(const Shape& in, const Shape& kernel,
                                    const Shape& output_padding, const Shape& output_shape,
                                    const KernelContext& ctx) const;
};

// The input spatial shape of an [N, C, spatial...] tensor, failing unless its rank is 3 or more.
Shape spatial_dims(const Tensor& x, const KernelContext& ctx);

// Most spatial dims the window ops accept.
constexpr size_t kMaxSpatialDims = 8;

}  // namespace graft
