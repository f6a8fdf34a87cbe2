#include "exec/movement_shapes.h"

#include <algorithm>
#include <numeric>

#include "exec/checked.h"

namespace graft {
namespace {

int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= shape[i];
  return p;
}

std::vector<int64_t> row_major_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

}  // namespace

Shape reshape_shape(const KernelContext& ctx, const Shape& in,
                    const std::vector<int64_t>& requested, bool allowzero) {
  const auto rank = static_cast<int64_t>(in.size());
  Shape shape(requested.size());
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < requested.size(); ++i) {
    int64_t d = requested[i];
    if (d == 0 && !allowzero) {
      if (static_cast<int64_t>(i) >= rank) {
        ctx.fail("shape entry " + std::to_string(i) + " is 0 but the input has rank " +
                 std::to_string(rank));
      }
      d = in[i];
    } else if (d == -1) {
      if (infer >= 0) ctx.fail("shape has more than one -1");
      infer = static_cast<int64_t>(i);
      continue;
    } else if (d < 0) {
      ctx.fail("shape entry " + std::to_string(d) + " is negative");
    }
    shape[i] = d;
    if (__builtin_mul_overflow(known, d, &known)) {
      ctx.fail("shape " + shape_to_string(requested) +
               " has more elements than a 64-bit count holds");
    }
  }
  const int64_t size = shape_size(in);
  if (infer >= 0) {
    if (known == 0) {
      if (size != 0) ctx.fail("cannot infer the -1 dim next to a zero dim");
      shape[static_cast<size_t>(infer)] = 0;
    } else {
      if (size % known != 0) {
        ctx.fail("cannot reshape " + shape_to_string(in) + " to " + shape_to_string(requested));
      }
      shape[static_cast<size_t>(infer)] = size / known;
    }
  }
  if (shape_size(shape) != size) {
    ctx.fail("cannot reshape " + shape_to_string(in) + " to " + shape_to_string(requested));
  }
  return shape;
}

Shape flatten_shape(const KernelContext& ctx, const Shape& in, int64_t axis) {
  const auto rank = static_cast<int64_t>(in.size());
  if (axis < -rank || axis > rank) {
    ctx.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  const auto a = static_cast<size_t>(axis < 0 ? axis + rank : axis);
  return {product(in, 0, a), product(in, a, in.size())};
}

Shape squeeze_shape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& axes) {
  const auto rank = static_cast<int64_t>(in.size());
  std::vector<bool> drop(in.size(), false);
  if (axes.empty()) {
    for (size_t d = 0; d < in.size(); ++d) drop[d] = in[d] == 1;
  }
  for (int64_t a : axes) {
    const auto axis = static_cast<size_t>(normalize_axis(ctx, a, rank));
    if (in[axis] != 1) {
      ctx.fail("cannot squeeze axis " + std::to_string(a) + " of shape " + shape_to_string(in));
    }
    drop[axis] = true;
  }
  Shape shape;
  for (size_t d = 0; d < in.size(); ++d) {
    if (!drop[d]) shape.push_back(in[d]);
  }
  return shape;
}

Shape unsqueeze_shape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& axes) {
  const auto rank = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> inserted(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    const auto axis = static_cast<size_t>(normalize_axis(ctx, a, rank));
    if (inserted[axis]) ctx.fail("axis " + std::to_string(a) + " is repeated");
    inserted[axis] = true;
  }
  Shape shape;
  size_t next = 0;
  for (size_t d = 0; d < static_cast<size_t>(rank); ++d) {
    shape.push_back(inserted[d] ? 1 : in[next++]);
  }
  return shape;
}

StridedView transpose_view(const KernelContext& ctx, const Shape& in,
                           const std::vector<int64_t>& given) {
  const size_t rank = in.size();
  std::vector<int64_t> perm = given;
  if (perm.empty()) {
    perm.resize(rank);
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (perm.size() != rank) {
    ctx.fail("perm has " + std::to_string(perm.size()) + " entries for an input of rank " +
             std::to_string(rank));
  }
  const std::vector<int64_t> in_strides = row_major_strides(in);
  std::vector<bool> seen(rank, false);
  StridedView view{Shape(rank), std::vector<int64_t>(rank), 0};
  for (size_t i = 0; i < rank; ++i) {
    const int64_t p = perm[i] < 0 ? perm[i] + static_cast<int64_t>(rank) : perm[i];
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
      ctx.fail("perm " + shape_to_string(perm) + " is not a permutation of the axes");
    }
    seen[static_cast<size_t>(p)] = true;
    view.shape[i] = in[static_cast<size_t>(p)];
    view.strides[i] = in_strides[static_cast<size_t>(p)];
  }
  return view;
}

StridedView slice_view(const KernelContext& ctx, const Shape& in,
                       const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                       std::vector<int64_t> axes, std::vector<int64_t> steps) {
  const size_t rank = in.size();
  if (starts.size() != ends.size()) ctx.fail("starts and ends differ in length");
  if (axes.empty()) {
    if (starts.size() > rank) ctx.fail("more starts than axes");
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) {
    ctx.fail("starts, ends, axes and steps differ in length");
  }
  const std::vector<int64_t> in_strides = row_major_strides(in);
  StridedView view{in, in_strides, 0};
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    const auto axis = static_cast<size_t>(normalize_axis(ctx, axes[i], static_cast<int64_t>(rank)));
    if (seen[axis]) ctx.fail("axis " + std::to_string(axes[i]) + " is repeated");
    seen[axis] = true;
    const int64_t dim = in[axis], step = steps[i];
    if (step == 0) ctx.fail("steps must not be 0");
    int64_t start = starts[i], end = ends[i];
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t count = 0;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      if (end > start) count = (end - start - 1) / step + 1;
    } else if (dim > 0) {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      if (start > end) count = (start - end - 1) / -step + 1;
    }
    view.shape[axis] = count;
    view.strides[axis] = in_strides[axis] * step;
    if (count > 0) view.offset += start * in_strides[axis];
  }
  return view;
}

StridedView expand_view(const KernelContext& ctx, const Shape& in, const Tensor& requested) {
  if (requested.rank() > 1) ctx.fail("shape must be 1-D");
  const Shape dims = requested.to_int_vector();
  for (int64_t d : dims) {
    if (d < 0) ctx.fail("shape " + shape_to_string(dims) + " has a negative dim");
  }
  StridedView view;
  view.shape = broadcast_shapes({in, dims}, ctx.describe());
  const std::vector<int64_t> in_strides = row_major_strides(in);
  const size_t lead = view.shape.size() - in.size();
  view.strides.assign(view.shape.size(), 0);
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] != 1) view.strides[lead + d] = in_strides[d];
  }
  return view;
}

Shape tile_shape(const KernelContext& ctx, const Shape& in, const std::vector<int64_t>& repeats) {
  if (repeats.size() != in.size()) {
    ctx.fail("repeats has " + std::to_string(repeats.size()) + " entries for an input of rank " +
             std::to_string(in.size()));
  }
  Shape shape(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    if (repeats[d] < 0) ctx.fail("repeats must be non-negative");
    shape[d] = checked_mul(in[d], repeats[d],
                           ctx.describe() + ": axis " + std::to_string(d) + " repeated");
  }
  return shape;
}

Shape shape_from_input(const KernelContext& ctx, const Tensor& shape) {
  const Shape dims = shape.to_int_vector();
  for (int64_t d : dims) {
    if (d < 0) ctx.fail("shape " + shape_to_string(dims) + " has a negative dim");
  }
  return dims;
}

Shape concat_shape(const KernelContext& ctx, const std::vector<Tensor>& parts, int64_t axis) {
  if (parts.empty()) ctx.fail("nothing to concatenate");
  const Tensor& first = parts[0];
  if (axis < 0 || axis >= first.rank()) ctx.fail("axis out of range");
  Shape shape = first.shape();
  shape[static_cast<size_t>(axis)] = 0;
  for (const Tensor& t : parts) {
    if (t.dtype() != first.dtype()) {
      ctx.fail(std::string("inputs have different dtypes: ") + dtype_name(first.dtype()) + " and " +
               dtype_name(t.dtype()));
    }
    if (t.rank() != first.rank()) {
      ctx.fail("inputs have different ranks: " + shape_to_string(first.shape()) + " and " +
               shape_to_string(t.shape()));
    }
    for (int64_t d = 0; d < t.rank(); ++d) {
      if (d != axis && t.dim(d) != first.dim(d)) {
        ctx.fail("input shapes " + shape_to_string(first.shape()) + " and " +
                 shape_to_string(t.shape()) + " differ outside axis " + std::to_string(axis));
      }
    }
    shape[static_cast<size_t>(axis)] += t.dim(axis);
  }
  return shape;
}

std::vector<int64_t> split_sizes(const KernelContext& ctx, int64_t dim, std::vector<int64_t> sizes,
                                 int num_outputs, bool uneven) {
  if (sizes.empty()) {
    const int64_t n = num_outputs;
    if (n <= 0) ctx.fail("no outputs");
    if (dim % n == 0) {
      sizes.assign(static_cast<size_t>(n), dim / n);
    } else {
      if (!uneven) {
        ctx.fail("axis dim " + std::to_string(dim) + " does not split evenly into " +
                 std::to_string(n) + " outputs");
      }
      const int64_t chunk = dim / n + 1;
      sizes.assign(static_cast<size_t>(n), chunk);
      sizes.back() = dim - chunk * (n - 1);
      if (sizes.back() < 0) {
        ctx.fail("axis dim " + std::to_string(dim) + " is too small for " + std::to_string(n) +
                 " outputs");
      }
    }
  }
  if (static_cast<int64_t>(sizes.size()) != num_outputs) {
    ctx.fail("split has " + std::to_string(sizes.size()) + " entries for " +
             std::to_string(num_outputs) + " outputs");
  }
  for (int64_t s : sizes) {
    if (s < 0) ctx.fail("split sizes must be non-negative");
  }
  if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != dim) {
    ctx.fail("split sizes " + shape_to_string(sizes) + " do not add up to the axis dim " +
             std::to_string(dim));
  }
  return sizes;
}

PadMode parse_pad_mode(const KernelInfo& info) {
  const std::string mode = info.attr_string("mode", "constant");
  if (mode == "constant") return PadMode::Constant;
  if (mode == "reflect") return PadMode::Reflect;
  if (mode == "edge") return PadMode::Edge;
  if (mode == "wrap" && info.since_version() >= 19) return PadMode::Wrap;
  info.fail("unsupported mode '" + mode + "'");
}

PadGeometry pad_geometry(const KernelContext& ctx, const Shape& in,
                         const std::vector<int64_t>& pads,
                         std::optional<std::vector<int64_t>> given_axes, PadMode mode) {
  const auto rank = static_cast<int64_t>(in.size());
  std::vector<int64_t> axes;
  if (given_axes) {
    axes = std::move(*given_axes);
  } else {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size()) {
    ctx.fail("pads has " + std::to_string(pads.size()) + " entries for " +
             std::to_string(axes.size()) + " axes");
  }
  PadGeometry g{in, std::vector<int64_t>(in.size(), 0)};
  std::vector<int64_t> end(in.size(), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const auto axis = static_cast<size_t>(normalize_axis(ctx, axes[i], rank));
    g.begin[axis] = pads[i];
    end[axis] = pads[axes.size() + i];
  }
  for (size_t d = 0; d < in.size(); ++d) {
    const std::string what = ctx.describe() + ": axis " + std::to_string(d) + " padded";
    g.shape[d] = checked_add(checked_add(in[d], g.begin[d], what), end[d], what);
    if (g.shape[d] < 0) ctx.fail("pads crop axis " + std::to_string(d) + " below size 0");
    if (in[d] == 0 && g.shape[d] > 0 && mode != PadMode::Constant) {
      ctx.fail("cannot pad the empty axis " + std::to_string(d) + " in this mode");
    }
  }
  return g;
}

int64_t pad_source(PadMode mode, int64_t i, int64_t dim) {
  switch (mode) {
    case PadMode::Edge:
      return i < 0 ? 0 : dim - 1;
    case PadMode::Wrap:
      return ((i % dim) + dim) % dim;
    case PadMode::Reflect: {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      i = ((i % period) + period) % period;
      return i < dim ? i : period - i;
    }
    default:
      return -1;
  }
}

Shape gather_shape(const Shape& data, const Shape& indices, int64_t axis) {
  Shape shape(data.begin(), data.begin() + axis);
  shape.insert(shape.end(), indices.begin(), indices.end());
  shape.insert(shape.end(), data.begin() + axis + 1, data.end());
  return shape;
}

void check_elements_indices(const KernelContext& ctx, const Shape& data, const Shape& indices,
                            int64_t axis) {
  if (indices.size() != data.size()) {
    ctx.fail("indices rank " + std::to_string(indices.size()) + " differs from data rank " +
             std::to_string(data.size()));
  }
  for (size_t d = 0; d < data.size(); ++d) {
    if (static_cast<int64_t>(d) != axis && indices[d] > data[d]) {
      ctx.fail("indices shape " + shape_to_string(indices) + " exceeds data shape " +
               shape_to_string(data));
    }
  }
}

GatherNDGeometry gather_nd_geometry(const KernelContext& ctx, const Shape& data,
                                    const Shape& indices, int64_t batch_dims) {
  const auto r = static_cast<int64_t>(data.size()), q = static_cast<int64_t>(indices.size());
  const int64_t b = batch_dims;
  if (r < 1 || q < 1) ctx.fail("data and indices must have rank >= 1");
  if (b < 0 || b >= q || b >= r) ctx.fail("batch_dims must be less than both ranks");
  GatherNDGeometry g;
  g.k = indices.back();
  if (g.k < 1 || g.k > r - b) {
    ctx.fail("indices last dim " + std::to_string(g.k) + " must be in [1, " +
             std::to_string(r - b) + "]");
  }
  const auto ub = static_cast<size_t>(b);
  for (size_t d = 0; d < ub; ++d) {
    if (indices[d] != data[d]) ctx.fail("batch dims of data and indices differ");
  }
  g.shape.assign(indices.begin(), indices.end() - 1);
  g.shape.insert(g.shape.end(), data.begin() + b + g.k, data.end());
  g.batches = product(data, 0, ub);
  g.batch_stride = product(data, ub, data.size());
  g.tuples = product(indices, ub, indices.size() - 1);
  g.slice = product(data, ub + static_cast<size_t>(g.k), data.size());
  return g;
}

int64_t scatter_nd_slice(const KernelContext& ctx, const Shape& data, const Shape& indices,
                         const Shape& updates) {
  if (data.empty() || indices.empty()) ctx.fail("data and indices must have rank >= 1");
  const int64_t k = indices.back();
  if (k > static_cast<int64_t>(data.size())) ctx.fail("indices last dim exceeds the data rank");
  Shape expected(indices.begin(), indices.end() - 1);
  expected.insert(expected.end(), data.begin() + k, data.end());
  if (updates != expected) {
    ctx.fail("updates shape " + shape_to_string(updates) + " should be " +
             shape_to_string(expected));
  }
  return product(data, static_cast<size_t>(k), data.size());
}

ScatterReduction parse_scatter_reduction(const KernelInfo& info) {
  const std::string r = info.attr_string("reduction", "none");
  if (r == "none") return ScatterReduction::None;
  if (r == "add" && info.since_version() >= 16) return ScatterReduction::Add;
  if (r == "mul" && info.since_version() >= 16) return ScatterReduction::Mul;
  if (r == "max" && info.since_version() >= 18) return ScatterReduction::Max;
  if (r == "min" && info.since_version() >= 18) return ScatterReduction::Min;
  info.fail("unsupported reduction '" + r + "'");
}

}  // namespace graft
