// Window geometry shared by Conv, ConvTranspose and the pooling ops: kernel, strides, dilations,
// pads (begin values then end values, as ONNX writes them) and the output spatial shape.
#pragma once

#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft::cpu {

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
};

// The input spatial shape of an [N, C, spatial...] tensor, failing unless its rank is 3 or more.
Shape spatial_dims(const Tensor& x, const KernelContext& ctx);

}  // namespace graft::cpu
