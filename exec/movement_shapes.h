// The shape rules of the data-movement ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
// Slice, Expand, Tile, Concat, Split, Pad, Gather, GatherElements, GatherND, ScatterElements,
// ScatterND, Range, ConstantOfShape): output shapes, the strided view an output reads its input
// through, and the checks on shapes, axes and attributes. Every provider's kernels for these ops
// use them, so each rule lives once. Errors go through ctx.fail, naming the node.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/kernel.h"
#include "exec/tensor.h"

namespace graft {

// Maps `axis` in [-rank, rank - 1] to [0, rank - 1]; ctx.fail() otherwise. `Ctx` is a KernelInfo
// or a KernelContext.
template <typename Ctx>
int64_t normalize_axis(const Ctx& ctx, int64_t axis, int64_t rank, const char* name = "axis") {
  if (axis < -rank || axis >= rank) {
    ctx.fail(std::string(name) + " " + std::to_string(axis) + " is out of range for rank " +
             std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

// Reshape: `requested` may hold one -1 (inferred from the element count) and zeros (the input's
// dim at that position, or a real 0 when `allowzero`).
Shape reshape_shape(const KernelContext& ctx, const Shape& in,
                    const std::vector<int64_t>& requested, bool allowzero);
// Flatten: [product of dims before axis, product of the rest]; axis in [-rank, rank].
Shape flatten_shape(const KernelContext& ctx, const Shape& in, int64_t axis);
// Squeeze: `in` without the listed axes (each of dim 1), or without every dim of 1 when `axes` is
// empty.
Shape squeeze_shape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& axes);
// Unsqueeze: `in` with dims of 1 inserted at `axes` (positions in the output, no repeats).
Shape unsqueeze_shape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& axes);

// How an output reads its input: output element (i0, i1, ...) of `shape` is input element
// offset + i0 * strides[0] + i1 * strides[1] + ... (a stride may be 0, broadcast, or negative,
// a reversed slice).
struct StridedView {
  Shape shape;
  std::vector<int64_t> strides;
  int64_t offset = 0;
};

// Transpose: `perm` (reversed axes when empty) applied to a row-major input of shape `in`.
StridedView transpose_view(const KernelContext& ctx, const Shape& in,
                           const std::vector<int64_t>& perm);
// Slice with ONNX's clamping: `axes` defaults to 0, 1, ... and `steps` to 1s when empty.
StridedView slice_view(const KernelContext& ctx, const Shape& in,
                       const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                       std::vector<int64_t> axes, std::vector<int64_t> steps);
// Expand: `in` broadcast with `requested` (a 1-D shape input of non-negative dims).
StridedView expand_view(const KernelContext& ctx, const Shape& in, const Tensor& requested);
// Tile: each dim times its repeat count (non-negative, one per dim).
Shape tile_shape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& repeats);
// A shape read from an input (ConstantOfShape): fails on a negative dim.
Shape shape_from_input(const KernelContext& ctx, const Tensor& shape);

// Concat: the parts' common shape with the sizes along `axis` (normalized) added. The parts must
// share dtype, rank and every other dim.
Shape concat_shape(const KernelContext& ctx, const std::vector<Tensor>& parts, int64_t axis);
// Split of an axis of `dim` elements into `num_outputs` pieces: `requested` when not empty (non-
// negative, adding up to dim), else equal parts; when `uneven` (Split-18's num_outputs) the last
// piece may be smaller.
std::vector<int64_t> split_sizes(const KernelContext& ctx, int64_t dim,
                                 std::vector<int64_t> requested, int num_outputs, bool uneven);

enum class PadMode { Constant, Reflect, Edge, Wrap };
// The mode attribute (wrap from opset 19); info.fail() for another.
PadMode parse_pad_mode(const KernelInfo& info);
// Pad's output shape and, per axis, how many elements are added before the input (negative:
// cropped). `pads` holds the begins then the ends of `axes` (every axis when not given).
struct PadGeometry {
  Shape shape;
  std::vector<int64_t> begin;
};
PadGeometry pad_geometry(const KernelContext& ctx, const Shape& in,
                         const std::vector<int64_t>& pads, std::optional<std::vector<int64_t>> axes,
                         PadMode mode);
// The input index a padded position `i` outside [0, dim) reads in `mode`, or -1 (the constant).
int64_t pad_source(PadMode mode, int64_t i, int64_t dim);

// Gather: data's shape with dim `axis` (normalized) replaced by the indices' shape.
Shape gather_shape(const Shape& data, const Shape& indices, int64_t axis);
// GatherElements and ScatterElements: indices of data's rank, no larger than data off the axis.
void check_elements_indices(const KernelContext& ctx, const Shape& data, const Shape& indices,
                            int64_t axis);
// GatherND: indices [..., k] address slices of data after `batch_dims` shared leading dims.
struct GatherNDGeometry {
  Shape shape;               // output
  int64_t k = 0;             // indices' last dim: the data dims each tuple addresses
  int64_t batches = 1;       // product of the batch dims
  int64_t tuples = 1;        // index tuples per batch
  int64_t slice = 1;         // elements one tuple addresses
  int64_t batch_stride = 1;  // data elements per batch
};
GatherNDGeometry gather_nd_geometry(const KernelContext& ctx, const Shape& data,
                                    const Shape& indices, int64_t batch_dims);
// ScatterND: updates must be indices.shape[:-1] + data.shape[k:]. Returns the elements each
// index tuple addresses.
int64_t scatter_nd_slice(const KernelContext& ctx, const Shape& data, const Shape& indices,
                         const Shape& updates);

// How scatter ops combine an update with the element it lands on (add and mul from opset 16,
// max and min from 18).
enum class ScatterReduction { None, Add, Mul, Max, Min };
ScatterReduction parse_scatter_reduction(const KernelInfo& info);

// Range: how many elements start, start + delta, ... stop before `limit`, computed in C (an
// integer type exactly, a float type as NumPy's arange does). Fails on a zero delta or a range
// that is not finite.
template <typename C>
int64_t range_count(const KernelContext& ctx, C start, C limit, C delta) {
  if (delta == C(0)) ctx.fail("delta must not be 0");
  auto too_many = [&] {
    ctx.fail("the range from " + std::to_string(start) + " to " + std::to_string(limit) + " by " +
             std::to_string(delta) + " has more elements than a 64-bit count holds");
  };
  if constexpr (std::is_integral_v<C>) {
    // The distance in the direction of delta, as an unsigned 64-bit number (exact for any two
    // int64 values), then the count ceil(distance / |delta|).
    const auto s = static_cast<int64_t>(start);
    const auto l = static_cast<int64_t>(limit);
    const auto step = static_cast<int64_t>(delta);
    if ((step > 0 && l <= s) || (step < 0 && l >= s)) return 0;
    const uint64_t distance = step > 0 ? static_cast<uint64_t>(l) - static_cast<uint64_t>(s)
                                       : static_cast<uint64_t>(s) - static_cast<uint64_t>(l);
    const uint64_t magnitude =
        step > 0 ? static_cast<uint64_t>(step) : uint64_t{0} - static_cast<uint64_t>(step);
    const uint64_t count = (distance - 1) / magnitude + 1;
    if (count > static_cast<uint64_t>(INT64_MAX)) too_many();
    return static_cast<int64_t>(count);
  } else {
    const C steps = std::ceil((limit - start) / delta);
    if (!std::isfinite(steps)) ctx.fail("the range is not finite");
    if (steps >= C(9.2233720368547758e18)) too_many();
    return steps > 0 ? static_cast<int64_t>(steps) : 0;
  }
}

}  // namespace graft
