// com.graft NchwcConv: a 2-D float convolution that writes a channel-blocked tensor (nchwc.h),
// made by ir/transforms/nchwc.cc from a Conv and the activations and residual Add after it:
//   Y = sum_activation(activation(conv(X, W) + B) + Sum)
// Inputs: X, blocked [N, ceil(C / b), H, W, b] (or plain [N, C, H, W] where the chain starts with
// few channels); W [M, C / group, KH, KW] and the optional B [M], both initializers; the optional
// Sum, blocked of Y's shape. Attributes: Conv's (auto_pad, kernel_shape, strides, dilations, pads,
// group), `activation` and `sum_activation` (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid or
// absent) with their parameters in `activation_params` and `sum_activation_params` (LeakyRelu's
// alpha; Clip's min and max; HardSigmoid's alpha and beta).
// W is packed into the primitive's layout when the kernel is built and never read again; the
// primitive (forward_inference, its activations and sum as oneDNN post-ops) is built once per
// input shape and kept in the kernel's PrimitiveCache. Y takes Sum's buffer when nothing reads Sum
// afterwards.
#include <algorithm>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "exec/kernel.h"
#include "exec/plan.h"
#include "exec/window.h"
#include "ir/names.h"
#include "providers/cpu/nn/nchwc.h"
#include "providers/cpu/nn/primitive_cache.h"

namespace graft::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr int kSumInput = 3;

// Appends the oneDNN post-ops computing `activation` (with `params` as the node spells them).
void append_activation(const KernelInfo& info, const std::string& activation,
                       const std::vector<float>& params, dnnl::post_ops& ops) {
  using dnnl::algorithm;
  auto param = [&](size_t i, float fallback) { return i < params.size() ? params[i] : fallback; };
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (activation.empty()) return;
  if (activation == "Relu") {
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
  } else if (activation == "LeakyRelu") {
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, param(0, 0.01f), 0.0f);
  } else if (activation == "Clip") {
    ops.append_eltwise(1.0f, algorithm::eltwise_clip, param(0, -kInf), param(1, kInf));
  } else if (activation == "Sigmoid") {
    ops.append_eltwise(1.0f, algorithm::eltwise_logistic, 0.0f, 0.0f);
  } else if (activation == "HardSigmoid") {
    ops.append_eltwise(1.0f, algorithm::eltwise_linear, param(0, 0.2f), param(1, 0.5f));
    ops.append_eltwise(1.0f, algorithm::eltwise_clip, 0.0f, 1.0f);
  } else {
    info.fail("unknown activation '" + activation + "'");
  }
}

// The primitive for one input shape, with the layout of the weights it reads.
struct ConvPrimitive {
  dnnl::convolution_forward primitive;
  memory::desc weights;
  memory::desc scratchpad;
};

class NchwcConv : public Kernel, public InPlaceKernel {
 public:
  explicit NchwcConv(const KernelInfo& info)
      : window_(info), group_(info.attr_int("group", 1)), has_sum_(info.has_input(kSumInput)) {
    const Tensor* w = info.constant_input(1);
    if (!w || w->dtype() != DType::Float || w->rank() != 4)
      info.fail("W must be a 4-D float initializer");
    maps_ = w->dim(0);
    channels_ = w->dim(1) * group_;
    kernel_ = {w->dim(2), w->dim(3)};
    if (group_ <= 0 || maps_ % group_ != 0)
      info.fail("group " + std::to_string(group_) + " does not divide W " +
                shape_to_string(w->shape()));
    if (!window_.kernel_shape.empty() && window_.kernel_shape != kernel_)
      info.fail("kernel_shape does not match W's spatial dims");
    // The weights are packed for a nominal input before any run checks the window (resolve).
    auto positive = [](const Shape& s) {
      return std::all_of(s.begin(), s.end(), [](int64_t v) { return v > 0; });
    };
    if (!positive(kernel_) || (!window_.strides.empty() && !positive(window_.strides)) ||
        (!window_.dilations.empty() && !positive(window_.dilations)))
      info.fail("kernel_shape, strides and dilations must be positive");
    if ((!window_.strides.empty() && window_.strides.size() != 2) ||
        (!window_.dilations.empty() && window_.dilations.size() != 2) ||
        (!window_.pads.empty() && window_.pads.size() != 4))
      info.fail("strides, dilations or pads do not match the 2 spatial dims");
    if (std::any_of(window_.pads.begin(), window_.pads.end(), [](int64_t v) { return v < 0; }))
      info.fail("pads must not be negative");
    if (info.has_input(2)) {
      const Tensor* b = info.constant_input(2);
      if (!b || b->dtype() != DType::Float || b->rank() != 1 || b->dim(0) != maps_)
        info.fail("B must be a float initializer of " + std::to_string(maps_) + " elements");
      bias_ = b->clone();
    }
    dnnl::post_ops ops;
    append_activation(info, info.attr_string("activation", ""),
                      info.attr_floats("activation_params"), ops);
    if (has_sum_) ops.append_sum(1.0f);
    append_activation(info, info.attr_string("sum_activation", ""),
                      info.attr_floats("sum_activation_params"), ops);
    attr_.set_post_ops(ops);
    attr_.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    try {
      pack_weights(*w);
    } catch (const dnnl::error& e) {
      info.fail(std::string("oneDNN could not pack the weights: ") + e.what());
    }
  }

  std::vector<int> packed_inputs() const override {
    return bias_.buffer() ? std::vector<int>{1, 2} : std::vector<int>{1};
  }

  std::vector<std::pair<int, int>> in_place_pairs() const override {
    return has_sum_ ? std::vector<std::pair<int, int>>{{0, kSumInput}}
                    : std::vector<std::pair<int, int>>{};
  }

  void compute(KernelContext& ctx) override { compute_in_place(ctx, {}); }

  void compute_in_place(KernelContext& ctx, const std::vector<int>& reuse) override {
    const Tensor& x = ctx.input(0);
    const bool blocked = x.rank() == 5;
    if (x.dtype() != DType::Float || (x.rank() != 4 && !blocked))
      ctx.fail("X must be a plain 4-D or blocked 5-D float tensor, got " +
               shape_to_string(x.shape()));
    const int64_t block = blocked ? x.dim(4) : nchwc_block();
    const bool fits =
        blocked ? (block == 8 || block == 16) && x.dim(1) == (channels_ + block - 1) / block
                : x.dim(1) == channels_;
    if (!fits)
      ctx.fail("X " + shape_to_string(x.shape()) + " does not hold the " +
               std::to_string(channels_) + " channels W reads");
    const WindowGeometry g = window_.resolve({x.dim(2), x.dim(3)}, kernel_, ctx);
    const Shape out_shape = nchwc_shape(x.dim(0), maps_, g.out[0], g.out[1], block);
    Tensor y;
    if (has_sum_) {
      const Tensor& sum = ctx.input(kSumInput);
      if (sum.shape() != out_shape || sum.dtype() != DType::Float)
        ctx.fail("Sum " + shape_to_string(sum.shape()) + " must be float of Y's shape " +
                 shape_to_string(out_shape));
      if (!reuse.empty() && reuse[0] == kSumInput) {
        y = sum;
        ctx.set_output(0, Value(y));
      } else {
        y = ctx.output(0, DType::Float, out_shape);
        std::copy_n(sum.data<float>(), sum.size(), y.data<float>());
      }
    } else {
      y = ctx.output(0, DType::Float, out_shape);
    }
    if (y.size() == 0) return;
    std::shared_ptr<ConvPrimitive> p;
    try {
      p = primitive_for(x, g, block);
    } catch (const dnnl::error& e) {
      ctx.fail(std::string("oneDNN could not build the convolution: ") + e.what());
    }
    auto& engine = dnnl_cpu_engine();
    const memory::desc src = blocked ? nchwc_desc(x.dim(0), channels_, x.dim(2), x.dim(3), block)
                                     : memory::desc(x.shape(), kF32, Tag::nchw);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(src, engine, const_cast<float*>(x.data<float>()))},
        {DNNL_ARG_WEIGHTS, memory(p->weights, engine, weights_for(p->weights))},
        {DNNL_ARG_DST,
         memory(nchwc_desc(x.dim(0), maps_, g.out[0], g.out[1], block), engine, y.data<float>())}};
    if (bias_.buffer())
      args[DNNL_ARG_BIAS] = memory({{maps_}, kF32, Tag::x}, engine, bias_.data<float>());
    Tensor scratchpad;
    if (p->scratchpad.get_size() > 0) {
      const auto floats = static_cast<int64_t>((p->scratchpad.get_size() + 3) / sizeof(float));
      scratchpad = Tensor::empty(DType::Float, {floats}, ctx.allocator());
      args[DNNL_ARG_SCRATCHPAD] = memory(p->scratchpad, engine, scratchpad.data<float>());
    }
    dnnl::stream stream(engine);
    p->primitive.execute(stream, args);
    stream.wait();
  }

 private:
  dnnl::convolution_forward::primitive_desc describe(const memory::desc& src, int64_t batch,
                                                     const WindowGeometry& g, int64_t block) const {
    memory::dims weights = {maps_, channels_ / group_, kernel_[0], kernel_[1]};
    if (group_ > 1) weights = {group_, maps_ / group_, channels_ / group_, kernel_[0], kernel_[1]};
    const memory::desc w(weights, kF32, Tag::any);
    const memory::desc dst = nchwc_desc(batch, maps_, g.out[0], g.out[1], block);
    const memory::dims strides = {g.strides[0], g.strides[1]};
    const memory::dims dilates = {g.dilations[0] - 1, g.dilations[1] - 1};
    const memory::dims pad_l = {g.pads[0], g.pads[1]}, pad_r = {g.pads[2], g.pads[3]};
    constexpr auto kind = dnnl::prop_kind::forward_inference;
    constexpr auto direct = dnnl::algorithm::convolution_direct;
    if (bias_.buffer()) {
      const memory::desc b({maps_}, kF32, Tag::x);
      return {
          {kind, direct, src, w, b, dst, strides, dilates, pad_l, pad_r}, attr_, dnnl_cpu_engine()};
    }
    return {{kind, direct, src, w, dst, strides, dilates, pad_l, pad_r}, attr_, dnnl_cpu_engine()};
  }

  // Packs W for the primitive of a nominal input (one image, 13 strides past the kernel, the
  // node's pads): other shapes mostly want the same layout, and weights_for repacks otherwise.
  void pack_weights(const Tensor& w) {
    WindowGeometry g;
    g.pads = window_.pads.size() == 4 ? window_.pads : Shape{0, 0, 0, 0};
    g.strides = window_.strides.size() == 2 ? window_.strides : Shape{1, 1};
    g.dilations = window_.dilations.size() == 2 ? window_.dilations : Shape{1, 1};
    for (size_t i = 0; i < 2; ++i) {
      const int64_t extent = (kernel_[i] - 1) * g.dilations[i] + 1;
      g.in.push_back(extent + 13 * g.strides[i]);
      g.out.push_back((g.in[i] + g.pads[i] + g.pads[i + 2] - extent) / g.strides[i] + 1);
    }
    const int64_t block = nchwc_block();
    const auto pd = describe(nchwc_desc(1, channels_, g.in[0], g.in[1], block), 1, g, block);
    memory::dims dims = pd.weights_desc().dims();
    const memory::desc plain(dims, kF32, group_ > 1 ? Tag::goihw : Tag::oihw);
    packed_.emplace_back(pd.weights_desc(), pack(plain, w.data<float>(), pd.weights_desc()));
  }

  // `from` (layout `layout`) copied into `to`'s layout.
  static Tensor pack(const memory::desc& layout, const float* from, const memory::desc& to) {
    const auto floats = static_cast<int64_t>((to.get_size() + 3) / sizeof(float));
    Tensor packed = Tensor::empty(DType::Float, {floats});
    auto& engine = dnnl_cpu_engine();
    memory src(layout, engine, const_cast<float*>(from)), dst(to, engine, packed.data<float>());
    dnnl::stream stream(engine);
    dnnl::reorder(src, dst).execute(stream, src, dst);
    stream.wait();
    return packed;
  }

  std::shared_ptr<ConvPrimitive> primitive_for(const Tensor& x, const WindowGeometry& g,
                                               int64_t block) {
    return primitives_.find_or_build(x.shape(), [&] {
      const memory::desc src = x.rank() == 5
                                   ? nchwc_desc(x.dim(0), channels_, x.dim(2), x.dim(3), block)
                                   : memory::desc(x.shape(), kF32, Tag::nchw);
      const auto pd = describe(src, x.dim(0), g, block);
      auto p = std::make_shared<ConvPrimitive>(
          ConvPrimitive{dnnl::convolution_forward(pd), pd.weights_desc(), pd.scratchpad_desc()});
      std::lock_guard<std::mutex> lock(mutex_);
      const bool have = std::any_of(packed_.begin(), packed_.end(),
                                    [&](const auto& e) { return e.first == p->weights; });
      if (!have)
        packed_.emplace_back(p->weights,
                             pack(packed_[0].first, packed_[0].second.data<float>(), p->weights));
      return p;
    });
  }

  float* weights_for(const memory::desc& layout) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [desc, tensor] : packed_) {
      if (desc == layout) return tensor.data<float>();
    }
    throw Fail("NchwcConv: no weights packed for a primitive it built");
  }

  WindowAttrs window_;
  int64_t group_;
  bool has_sum_;
  int64_t maps_ = 0, channels_ = 0;
  Shape kernel_;
  Tensor bias_;
  dnnl::primitive_attr attr_;
  std::mutex mutex_;
  // W in each layout a primitive asked for; the first is the nominal one.
  std::vector<std::pair<memory::desc, Tensor>> packed_;
  PrimitiveCache<Shape, ConvPrimitive> primitives_;
};

}  // namespace

GRAFT_CPU_KERNELS(nchwc_conv) {
  reg.add({names::kDomain, "NchwcConv", 1, 1 << 30, {DType::Float}, 0, make<NchwcConv>});
}

}  // namespace graft::cpu
