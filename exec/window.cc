#include "exec/window.h"

#include <algorithm>

namespace graft {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

WindowAttrs::WindowAttrs(const KernelInfo& info)
    : auto_pad(info.attr_string("auto_pad", "NOTSET")),
      kernel_shape(info.attr_ints("kernel_shape")),
      strides(info.attr_ints("strides")),
      dilations(info.attr_ints("dilations")),
      pads(info.attr_ints("pads")),
      ceil_mode(info.attr_int("ceil_mode", 0) != 0) {
  if (auto_pad.empty()) auto_pad = "NOTSET";
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" &&
      auto_pad != "VALID")
    info.fail("unknown auto_pad '" + auto_pad + "'");
}

Shape spatial_dims(const Tensor& x, const KernelContext& ctx) {
  if (x.rank() < 3)
    ctx.fail("input X must have rank 3 or more ([N, C, spatial...]), got " +
             shape_to_string(x.shape()));
  return Shape(x.shape().begin() + 2, x.shape().end());
}

WindowGeometry WindowAttrs::resolve(const Shape& in, const Shape& kernel,
                                    const KernelContext& ctx) const {
  const size_t n = in.size();
  WindowGeometry g;
  g.in = in;
  g.kernel = kernel;
  g.strides = strides.empty() ? Shape(n, 1) : strides;
  g.dilations = dilations.empty() ? Shape(n, 1) : dilations;
  g.pads = pads.empty() ? Shape(2 * n, 0) : pads;
  if (g.kernel.size() != n || g.strides.size() != n || g.dilations.size() != n ||
      g.pads.size() != 2 * n)
    ctx.fail("kernel_shape, strides, dilations or pads do not match the " + std::to_string(n) +
             " spatial dims of the input");
  g.out.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (g.kernel[i] <= 0 || g.strides[i] <= 0 || g.dilations[i] <= 0)
      ctx.fail("kernel_shape, strides and dilations must be positive");
    if (g.pads[i] < 0 || g.pads[n + i] < 0) ctx.fail("pads must not be negative");
    const int64_t window = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[i] = (in[i] + g.strides[i] - 1) / g.strides[i];
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.strides[i] + window - in[i]);
      const int64_t small = total / 2, large = total - total / 2;
      g.pads[i] = auto_pad == "SAME_UPPER" ? small : large;
      g.pads[n + i] = auto_pad == "SAME_UPPER" ? large : small;
      continue;
    }
    if (auto_pad == "VALID") g.pads[i] = g.pads[n + i] = 0;
    const int64_t span = in[i] + g.pads[i] + g.pads[n + i] - window;
    if (span < 0)
      ctx.fail("the window (" + std::to_string(window) + ") is larger than the padded input (" +
               std::to_string(in[i] + g.pads[i] + g.pads[n + i]) + ") on spatial dim " +
               std::to_string(i));
    g.out[i] = span / g.strides[i] + 1;
    if (ceil_mode && span % g.strides[i] != 0) {
      ++g.out[i];
      // The last window must start inside the input or its begin padding.
      if ((g.out[i] - 1) * g.strides[i] >= in[i] + g.pads[i]) --g.out[i];
    }
  }
  return g;
}

WindowGeometry WindowAttrs::resolve_transposed(const Shape& in, const Shape& kernel,
                                               const Shape& output_padding,
                                               const Shape& output_shape,
                                               const KernelContext& ctx) const {
  const size_t n = in.size();
  WindowGeometry g;
  g.kernel = kernel;
  g.out = in;
  g.strides = strides.empty() ? Shape(n, 1) : strides;
  g.dilations = dilations.empty() ? Shape(n, 1) : dilations;
  g.pads = pads.empty() ? Shape(2 * n, 0) : pads;
  const Shape out_pad = output_padding.empty() ? Shape(n, 0) : output_padding;
  Shape requested = output_shape;
  if (requested.size() == n + 2) requested.erase(requested.begin(), requested.begin() + 2);
  if (g.kernel.size() != n || g.strides.size() != n || g.dilations.size() != n ||
      g.pads.size() != 2 * n || out_pad.size() != n ||
      (!requested.empty() && requested.size() != n))
    ctx.fail("strides, dilations, pads, output_padding or output_shape do not match the " +
             std::to_string(n) + " spatial dims of X");
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  g.in.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (g.strides[i] <= 0 || g.dilations[i] <= 0 || kernel[i] <= 0)
      ctx.fail("kernel, strides and dilations must be positive");
    const int64_t full =
        g.strides[i] * (in[i] - 1) + out_pad[i] + (kernel[i] - 1) * g.dilations[i] + 1;
    if (same) {
      g.in[i] = requested.empty() ? in[i] * g.strides[i] : requested[i];
      const int64_t total = full - g.in[i];
      const int64_t half = floor_div(total, 2);
      g.pads[i] = auto_pad == "SAME_UPPER" ? half : total - half;
      g.pads[n + i] = total - g.pads[i];
    } else {
      if (auto_pad == "VALID") g.pads[i] = g.pads[n + i] = 0;
      g.in[i] = requested.empty() ? full - g.pads[i] - g.pads[n + i] : requested[i];
    }
    if (g.in[i] < 0) ctx.fail("the output would have a negative size");
  }
  return g;
}

}  // namespace graft
