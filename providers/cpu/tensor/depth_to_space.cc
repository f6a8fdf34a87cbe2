// DepthToSpace and SpaceToDepth: move blocks between the channel and the spatial dims of an
// NCHW tensor. Each is a reshape to 6-D, a transpose and a reshape back, done as one strided
// copy.
#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

// Copies x viewed as `view` (row-major) and permuted by `perm` into y.
void permuted_copy(const Tensor& x, Tensor& y, const Shape& view, const std::vector<int>& perm,
                   const char* what) {
  const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(view);
  Shape shape;
  std::vector<int64_t> strides;
  for (int p : perm) {
    shape.push_back(view[static_cast<size_t>(p)]);
    strides.push_back(in_strides[static_cast<size_t>(p)]);
  }
  tensor_ops::dispatch_copyable(x.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    tensor_ops::strided_copy(y.data<T>(), x.data<T>(), shape, strides);
  });
}

bool parse_crd(const KernelInfo& info) {
  const std::string mode = info.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") info.fail("mode must be DCR or CRD, got '" + mode + "'");
  return mode == "CRD";
}

class DepthToSpace final : public Kernel {
 public:
  explicit DepthToSpace(const KernelInfo& info)
      : blocksize_(info.required_int("blocksize")), crd_(parse_crd(info)) {
    if (blocksize_ < 1) info.fail("blocksize must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 4) ctx.fail("input must be 4-D, got " + shape_to_string(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), b = blocksize_;
    if (c % (b * b) != 0) {
      ctx.fail("channels " + std::to_string(c) + " are not divisible by blocksize^2");
    }
    const int64_t depth = c / (b * b);
    Tensor& y = ctx.output(0, x.dtype(), {n, depth, h * b, w * b});
    if (crd_) {
      permuted_copy(x, y, {n, depth, b, b, h, w}, {0, 1, 4, 2, 5, 3}, "DepthToSpace");
    } else {
      permuted_copy(x, y, {n, b, b, depth, h, w}, {0, 3, 4, 1, 5, 2}, "DepthToSpace");
    }
  }

 private:
  int64_t blocksize_;
  bool crd_;
};

// SpaceToDepth-28 adds mode.
class SpaceToDepth final : public Kernel {
 public:
  explicit SpaceToDepth(const KernelInfo& info)
      : blocksize_(info.required_int("blocksize")), crd_(parse_crd(info)) {
    if (blocksize_ < 1) info.fail("blocksize must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 4) ctx.fail("input must be 4-D, got " + shape_to_string(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), b = blocksize_;
    if (h % b != 0 || w % b != 0) ctx.fail("height and width must be divisible by blocksize");
    Tensor& y = ctx.output(0, x.dtype(), {n, c * b * b, h / b, w / b});
    const Shape view = {n, c, h / b, b, w / b, b};
    if (crd_) {
      permuted_copy(x, y, view, {0, 1, 3, 5, 2, 4}, "SpaceToDepth");
    } else {
      permuted_copy(x, y, view, {0, 3, 5, 1, 2, 4}, "SpaceToDepth");
    }
  }

 private:
  int64_t blocksize_;
  bool crd_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_depth_to_space) {
  reg.add({"", "DepthToSpace", 1, 1 << 30, {}, 0, make<DepthToSpace>});
  reg.add({"", "SpaceToDepth", 1, 1 << 30, {}, 0, make<SpaceToDepth>});
}

}  // namespace graft
