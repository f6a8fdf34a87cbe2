// InstanceNormalization, LayerNormalization and GroupNormalization: standardize groups of
// contiguous elements with their own mean and (population) variance, then apply a per-element
// scale and bias. Statistics are computed in double.
#include <omp.h>

#include <cmath>

#include "exec/kernel.h"
#include "exec/reduce_shapes.h"

namespace graft {
namespace {

// Mean and 1/sqrt(var + epsilon) of n contiguous elements.
template <typename T>
void stats(const T* v, int64_t n, double epsilon, double& mean, double& inv_std) {
  // Summed in vector lanes: in double, the order costs nothing visible in a float result.
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]);
  mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(v[i]) - mean;
    sq += d * d;
  }
  inv_std = 1.0 / std::sqrt((n > 0 ? sq / static_cast<double>(n) : 0.0) + epsilon);
}

std::vector<double> as_doubles(const Tensor& t, const char* what) {
  std::vector<double> out(static_cast<size_t>(t.size()));
  dispatch_float(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(t.data<T>()[i]);
  });
  return out;
}

// Standardizes `groups` runs of `size` elements of x into y; element j of run g is then scaled
// and shifted by affine(g, j, value). Optionally reports each run's statistics.
template <typename T, typename Affine>
void normalize_runs(const T* x, T* y, int64_t groups, int64_t size, double epsilon, Affine affine,
                    double* means = nullptr, double* inv_stds = nullptr) {
#pragma omp parallel for if (groups * size > (1 << 14) && !omp_in_parallel())
  for (int64_t g = 0; g < groups; ++g) {
    double mean = 0, inv_std = 0;
    stats(x + g * size, size, epsilon, mean, inv_std);
    if (means != nullptr) means[g] = mean;
    if (inv_stds != nullptr) inv_stds[g] = inv_std;
    const T* src = x + g * size;
    T* dst = y + g * size;
#pragma omp simd
    for (int64_t j = 0; j < size; ++j)
      dst[j] = static_cast<T>(affine(g, j, (static_cast<double>(src[j]) - mean) * inv_std));
  }
}

class InstanceNormalization : public Kernel {
 public:
  explicit InstanceNormalization(const KernelInfo& info)
      : epsilon_(info.attr_float("epsilon", 1e-5f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 3) ctx.fail("input must have rank 3 or more, got " + shape_to_string(x.shape()));
    const int64_t c = x.dim(1), planes = x.dim(0) * c;
    const int64_t size = planes > 0 ? x.size() / planes : 0;
    const std::vector<double> scale = as_doubles(ctx.input(1), "InstanceNormalization");
    const std::vector<double> bias = as_doubles(ctx.input(2), "InstanceNormalization");
    if (static_cast<int64_t>(scale.size()) != c || static_cast<int64_t>(bias.size()) != c)
      ctx.fail("scale and B must have " + std::to_string(c) + " elements");
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_float(x.dtype(), "InstanceNormalization", [&](auto tag) {
      using T = typename decltype(tag)::type;
      normalize_runs(x.data<T>(), y.data<T>(), planes, size, epsilon_,
                     [&](int64_t g, int64_t, double v) {
                       const size_t ch = static_cast<size_t>(g % c);
                       return v * scale[ch] + bias[ch];
                     });
    });
  }

 private:
  float epsilon_;
};

class GroupNormalization : public Kernel {
 public:
  explicit GroupNormalization(const KernelInfo& info)
      : epsilon_(info.attr_float("epsilon", 1e-5f)),
        num_groups_(info.required_int("num_groups")),
        per_group_params_(info.since_version() < 21) {
    if (num_groups_ <= 0) info.fail("num_groups must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) ctx.fail("input must have rank 2 or more, got " + shape_to_string(x.shape()));
    const int64_t c = x.dim(1);
    if (c % num_groups_ != 0)
      ctx.fail(std::to_string(c) + " channels do not divide into " + std::to_string(num_groups_) +
               " groups");
    const int64_t spatial = c > 0 && x.dim(0) > 0 ? x.size() / (x.dim(0) * c) : 0;
    const int64_t channels_per_group = c / num_groups_;
    const std::vector<double> scale = as_doubles(ctx.input(1), "GroupNormalization");
    const std::vector<double> bias = as_doubles(ctx.input(2), "GroupNormalization");
    const int64_t expected = per_group_params_ ? num_groups_ : c;
    if (static_cast<int64_t>(scale.size()) != expected ||
        static_cast<int64_t>(bias.size()) != expected)
      ctx.fail("scale and bias must have " + std::to_string(expected) + " elements");
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const int64_t groups = x.dim(0) * num_groups_;
    dispatch_float(x.dtype(), "GroupNormalization", [&](auto tag) {
      using T = typename decltype(tag)::type;
      normalize_runs(x.data<T>(), y.data<T>(), groups, channels_per_group * spatial, epsilon_,
                     [&](int64_t g, int64_t j, double v) {
                       const int64_t group = g % num_groups_;
                       const size_t p = static_cast<size_t>(
                           per_group_params_ ? group : group * channels_per_group + j / spatial);
                       return v * scale[p] + bias[p];
                     });
    });
  }

 private:
  float epsilon_;
  int64_t num_groups_;
  bool per_group_params_;  // opset 18: scale and bias per group; 21: per channel
};

// For each element of `shape` (row-major), its index in a tensor of `param` shape broadcast to it
// (NumPy rules, right-aligned). Returns false when `param` does not broadcast.
bool broadcast_index(const Shape& shape, const Shape& param, std::vector<int64_t>& index) {
  if (param.size() > shape.size()) return false;
  const size_t lead = shape.size() - param.size();
  std::vector<int64_t> strides(shape.size(), 0);
  int64_t stride = 1;
  for (size_t d = shape.size(); d-- > lead;) {
    const int64_t p = param[d - lead];
    if (p != 1 && p != shape[d]) return false;
    strides[d] = p == 1 ? 0 : stride;
    stride *= p;
  }
  const int64_t count = shape_size(shape);
  index.assign(static_cast<size_t>(count), 0);
  std::vector<int64_t> pos(shape.size(), 0);
  int64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    index[static_cast<size_t>(i)] = offset;
    for (size_t d = shape.size(); d-- > 0;) {
      offset += strides[d];
      if (++pos[d] < shape[d]) break;
      offset -= strides[d] * shape[d];
      pos[d] = 0;
    }
  }
  return true;
}

class LayerNormalization : public Kernel {
 public:
  explicit LayerNormalization(const KernelInfo& info)
      : axis_(info.attr_int("axis", -1)),
        epsilon_(info.attr_float("epsilon", 1e-5f)),
        stash_type_(info.attr_int("stash_type", 1)) {
    if (stash_type_ != static_cast<int64_t>(DType::Float) &&
        stash_type_ != static_cast<int64_t>(DType::BFloat16) &&
        stash_type_ != static_cast<int64_t>(DType::Double))
      info.fail("stash_type must be float, bfloat16 or double");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rank = x.rank();
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank)
      ctx.fail("axis " + std::to_string(axis_) + " is out of range for rank " +
               std::to_string(rank));
    const Shape norm_shape(x.shape().begin() + axis, x.shape().end());
    const AxisSplit split = split_at_axis(x.shape(), axis, true);
    const int64_t rows = split.outer, cols = split.n;
    const std::vector<double> scale = as_doubles(ctx.input(1), "LayerNormalization");
    std::vector<double> bias;
    if (ctx.has_input(2)) bias = as_doubles(ctx.input(2), "LayerNormalization");
    std::vector<int64_t> scale_index, bias_index;
    if (!broadcast_index(norm_shape, ctx.input(1).shape(), scale_index) ||
        (ctx.has_input(2) && !broadcast_index(norm_shape, ctx.input(2).shape(), bias_index)))
      ctx.fail("Scale and B must broadcast to the normalized shape " + shape_to_string(norm_shape));
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    std::vector<double> means(static_cast<size_t>(rows)), inv_stds(static_cast<size_t>(rows));
    dispatch_float(x.dtype(), "LayerNormalization", [&](auto tag) {
      using T = typename decltype(tag)::type;
      normalize_runs(
          x.data<T>(), y.data<T>(), rows, cols, epsilon_,
          [&](int64_t, int64_t j, double v) {
            const size_t jj = static_cast<size_t>(j);
            return v * scale[static_cast<size_t>(scale_index[jj])] +
                   (bias.empty() ? 0.0 : bias[static_cast<size_t>(bias_index[jj])]);
          },
          means.data(), inv_stds.data());
    });
    Shape stat_shape(x.shape().begin(), x.shape().begin() + axis);
    stat_shape.insert(stat_shape.end(), static_cast<size_t>(rank - axis), 1);
    const DType stat_dtype = static_cast<DType>(stash_type_);
    for (int out = 1; out <= 2; ++out) {
      if (out >= ctx.num_outputs() || !ctx.has_output(out)) continue;
      Tensor& t = ctx.output(out, stat_dtype, stat_shape);
      const std::vector<double>& values = out == 1 ? means : inv_stds;
      dispatch_float(stat_dtype, "LayerNormalization", [&](auto tag) {
        using T = typename decltype(tag)::type;
        for (size_t i = 0; i < values.size(); ++i) t.data<T>()[i] = static_cast<T>(values[i]);
      });
    }
  }

 private:
  int64_t axis_;
  float epsilon_;
  int64_t stash_type_;
};

}  // namespace

GRAFT_CPU_KERNELS(normalization) {
  reg.add({"", "InstanceNormalization", 1, 1 << 30, kFloatTypes, 0, make<InstanceNormalization>});
  reg.add({"", "GroupNormalization", 18, 1 << 30, kFloatTypes, 0, make<GroupNormalization>});
  reg.add({"", "LayerNormalization", 17, 1 << 30, kFloatTypes, 0, make<LayerNormalization>});
}

}  // namespace graft
