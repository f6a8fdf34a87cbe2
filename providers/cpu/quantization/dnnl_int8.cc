#include "providers/cpu/quantization/dnnl_int8.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "exec/error.h"
#include "exec/tensor.h"

namespace graft::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

memory::data_type dnnl_type(DType dtype) {
  switch (dtype) {
    case DType::UInt8:
      return memory::data_type::u8;
    case DType::Int8:
      return memory::data_type::s8;
    case DType::Int32:
      return memory::data_type::s32;
    case DType::Float:
      return memory::data_type::f32;
    default:
      throw Fail(std::string("oneDNN int8 primitives take no ") + dtype_name(dtype));
  }
}

// Scales on the output channel (dim 1 of a convolution's or a product's result), zero points
// fed at run time.
dnnl::primitive_attr make_attr(const Int8Requant& r, bool x_zero) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (!r.scales.empty()) attr.set_output_scales(r.scales.size() > 1 ? 1 << 1 : 0, r.scales);
  if (r.scale_count > 0)
    attr.set_output_scales(r.scale_count > 1 ? 1 << 1 : 0, {DNNL_RUNTIME_F32_VAL});
  if (x_zero) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  if (r.y_zero != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
  return attr;
}

// Uninitialized bytes for one call, from graft's caching allocator.
memory scratch(const memory::desc& desc, std::vector<Tensor>& keep) {
  const auto bytes = static_cast<int64_t>(desc.get_size());
  keep.push_back(Tensor::empty(DType::UInt8, Shape{bytes > 0 ? bytes : 1}));
  return memory(desc, engine(), keep.back().data<uint8_t>());
}

// The packed weights in the layout a primitive asks for: `packed` itself, or a copy reordered
// from it once.
memory weights_for(const memory& packed, const memory::desc& wanted) {
  if (packed.get_desc() == wanted) return packed;
  memory copy(wanted, engine());
  dnnl::stream stream(engine());
  dnnl::reorder(packed, copy).execute(stream, const_cast<memory&>(packed), copy);
  stream.wait();
  return copy;
}

// Builds `Plan` for `key` once (under `mutex`) and returns it.
template <typename Plan, typename Build>
const Plan& find_or_build(std::mutex& mutex, std::map<std::vector<int64_t>, Plan>& plans,
                          const std::vector<int64_t>& key, Build&& build) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) {
    try {
      it = plans.emplace(key, build()).first;
    } catch (const dnnl::error& e) {
      throw Fail(std::string("oneDNN could not build an int8 primitive: ") + e.what());
    }
  }
  return it->second;
}

void add_zero_points(std::unordered_map<int, memory>& args, const int32_t* x_zero,
                     const int32_t* y_zero) {
  const memory::desc one({1}, memory::data_type::s32, Tag::x);
  if (x_zero)
    args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] =
        memory(one, engine(), const_cast<int32_t*>(x_zero));
  if (y_zero)
    args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] =
        memory(one, engine(), const_cast<int32_t*>(y_zero));
}

}  // namespace

bool dnnl_int8_usable(bool exact, DType x_dtype, const int8_t* w, int64_t count) {
  using Isa = dnnl::cpu_isa;
  const Isa isa = dnnl::get_effective_cpu_isa();
  if (isa == Isa::avx512_core_vnni || isa == Isa::avx512_core_bf16 || isa == Isa::avx512_core_amx ||
      isa == Isa::avx2_vnni)
    return true;
  if (x_dtype != DType::UInt8) return false;
  if (!exact) return true;
  // 255 * (64 + 64) fits in int16.
  return std::all_of(w, w + count, [](int8_t v) { return v >= -64 && v <= 64; });
}

// --- convolution ------------------------------------------------------------------------------

struct ConvPlan {
  dnnl::convolution_forward conv;
  dnnl::reorder to_nhwc, to_nchw;
  memory::desc src_nchw, src_nhwc, dst_nhwc, dst_nchw, scratchpad;
  memory weights;
};

struct DnnlInt8Conv::Impl {
  Int8ConvSpec spec;
  memory weights, bias;
  std::vector<int32_t> bias_values;
  mutable std::mutex mutex;
  mutable std::map<std::vector<int64_t>, ConvPlan> plans;

  // The primitive for geometry `g`, weights in the layout it prefers. Activations are NHWC:
  // oneDNN's int8 kernels take it directly (NCHW has reference loops only).
  dnnl::convolution_forward::primitive_desc describe(const Int8ConvGeometry& g) const {
    const Int8ConvSpec& s = spec;
    const memory::dims src = {g.batch, s.channels, g.in[0], g.in[1]};
    const memory::dims dst = {g.batch, s.maps, g.out[0], g.out[1]};
    const memory::dims w = s.group > 1
                               ? memory::dims{s.group, s.maps / s.group, s.channels / s.group,
                                              s.kernel[0], s.kernel[1]}
                               : memory::dims{s.maps, s.channels, s.kernel[0], s.kernel[1]};
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        memory::desc(src, dnnl_type(s.requant.x_dtype), Tag::nhwc),
        memory::desc(w, memory::data_type::s8, Tag::any),
        memory::desc({s.maps}, memory::data_type::s32, Tag::x),
        memory::desc(dst, dnnl_type(s.requant.y_dtype), Tag::nhwc), {s.strides[0], s.strides[1]},
        {s.dilations[0] - 1, s.dilations[1] - 1}, {g.pads[0], g.pads[1]}, {g.pads[2], g.pads[3]});
    return {d, make_attr(s.requant, s.x_zero != 0), engine()};
  }
};

DnnlInt8Conv::DnnlInt8Conv(const Int8ConvSpec& spec, const int8_t* w, const int32_t* bias)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = spec;
  const Int8ConvSpec& s = spec;
  // The weights' layout depends on the channels and the kernel, not on the image: any geometry
  // with this kernel picks it.
  Int8ConvGeometry nominal;
  nominal.batch = 1;
  for (int i = 0; i < 2; ++i) {
    nominal.out[i] = 8;
    nominal.in[i] = (nominal.out[i] - 1) * s.strides[i] + (s.kernel[i] - 1) * s.dilations[i] + 1;
  }
  try {
    const auto pd = impl_->describe(nominal);
    memory::dims dims = pd.weights_desc().dims();
    const memory::desc plain(dims, memory::data_type::s8, s.group > 1 ? Tag::goihw : Tag::oihw);
    memory user(plain, engine(), const_cast<int8_t*>(w));
    impl_->weights = memory(pd.weights_desc(), engine());
    dnnl::stream stream(engine());
    dnnl::reorder(user, impl_->weights).execute(stream, user, impl_->weights);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Fail(std::string("oneDNN could not build an int8 convolution: ") + e.what());
  }
  impl_->bias_values.assign(static_cast<size_t>(s.maps), 0);
  if (bias) impl_->bias_values.assign(bias, bias + s.maps);
  impl_->bias = memory(memory::desc({s.maps}, memory::data_type::s32, Tag::x), engine(),
                       impl_->bias_values.data());
}

DnnlInt8Conv::~DnnlInt8Conv() = default;

void DnnlInt8Conv::run(const Int8ConvGeometry& g, const void* x, void* y,
                       bool channels_last) const {
  const Impl& im = *impl_;
  const std::vector<int64_t> key = {g.batch,   g.in[0],   g.in[1],  g.pads[0],
                                    g.pads[1], g.pads[2], g.pads[3]};
  const ConvPlan& plan = find_or_build(im.mutex, im.plans, key, [&] {
    ConvPlan p;
    const auto pd = im.describe(g);
    p.conv = dnnl::convolution_forward(pd);
    p.src_nhwc = pd.src_desc();
    p.dst_nhwc = pd.dst_desc();
    p.src_nchw = memory::desc(p.src_nhwc.dims(), p.src_nhwc.data_type(), Tag::nchw);
    p.dst_nchw = memory::desc(p.dst_nhwc.dims(), p.dst_nhwc.data_type(), Tag::nchw);
    p.to_nhwc =
        dnnl::reorder(dnnl::reorder::primitive_desc(engine(), p.src_nchw, engine(), p.src_nhwc));
    p.to_nchw =
        dnnl::reorder(dnnl::reorder::primitive_desc(engine(), p.dst_nhwc, engine(), p.dst_nchw));
    p.scratchpad = pd.scratchpad_desc();
    p.weights = weights_for(im.weights, pd.weights_desc());
    return p;
  });
  dnnl::stream stream(engine());
  std::vector<Tensor> keep;
  memory x_nhwc, y_nhwc;
  if (channels_last) {
    x_nhwc = memory(plan.src_nhwc, engine(), const_cast<void*>(x));
    y_nhwc = memory(plan.dst_nhwc, engine(), y);
  } else {
    x_nhwc = scratch(plan.src_nhwc, keep);
    y_nhwc = scratch(plan.dst_nhwc, keep);
    memory x_user(plan.src_nchw, engine(), const_cast<void*>(x));
    plan.to_nhwc.execute(stream, x_user, x_nhwc);
  }
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, x_nhwc},
                                          {DNNL_ARG_WEIGHTS, plan.weights},
                                          {DNNL_ARG_BIAS, im.bias},
                                          {DNNL_ARG_DST, y_nhwc},
                                          {DNNL_ARG_SCRATCHPAD, scratch(plan.scratchpad, keep)}};
  add_zero_points(args, im.spec.x_zero != 0 ? &im.spec.x_zero : nullptr,
                  im.spec.requant.y_zero != 0 ? &im.spec.requant.y_zero : nullptr);
  plan.conv.execute(stream, args);
  if (!channels_last) {
    memory y_user(plan.dst_nchw, engine(), y);
    plan.to_nchw.execute(stream, y_nhwc, y_user);
  }
  stream.wait();
}

// --- matrix product ---------------------------------------------------------------------------

struct MatMulPlan {
  dnnl::matmul product;
  memory::desc a, y, scratchpad;
  memory weights;
};

struct DnnlInt8MatMul::Impl {
  int64_t k = 0, n = 0;
  Int8Requant requant;
  memory weights;
  mutable std::mutex mutex;
  mutable std::map<std::vector<int64_t>, MatMulPlan> plans;

  dnnl::matmul::primitive_desc describe(int64_t m) const {
    const dnnl::matmul::desc d(memory::desc({m, k}, dnnl_type(requant.x_dtype), Tag::ab),
                               memory::desc({k, n}, memory::data_type::s8, Tag::any),
                               memory::desc({m, n}, dnnl_type(requant.y_dtype), Tag::ab));
    dnnl::primitive_attr attr = make_attr(requant, true);
    if (requant.bias) {
      // Added after the scales, as a binary post-op (the primitive's own bias is scaled).
      dnnl::post_ops ops;
      ops.append_binary(dnnl::algorithm::binary_add,
                        memory::desc({1, n}, memory::data_type::f32, Tag::ab));
      attr.set_post_ops(ops);
    }
    return {d, attr, engine()};
  }
};

DnnlInt8MatMul::DnnlInt8MatMul(int64_t k, int64_t n, const int8_t* b, const Int8Requant& requant)
    : impl_(std::make_unique<Impl>()) {
  impl_->k = k;
  impl_->n = n;
  impl_->requant = requant;
  // The product's rows do not change the packed layout of b: one nominal row count picks it.
  constexpr int64_t kNominalRows = 128;
  try {
    const auto pd = impl_->describe(kNominalRows);
    memory user(memory::desc({k, n}, memory::data_type::s8, Tag::ab), engine(),
                const_cast<int8_t*>(b));
    impl_->weights = memory(pd.weights_desc(), engine());
    dnnl::stream stream(engine());
    dnnl::reorder(user, impl_->weights).execute(stream, user, impl_->weights);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Fail(std::string("oneDNN could not build an int8 matrix product: ") + e.what());
  }
}

DnnlInt8MatMul::~DnnlInt8MatMul() = default;

void DnnlInt8MatMul::run(int64_t m, const void* a, int32_t a_zero, void* y, const float* scales,
                         const float* bias) const {
  const Impl& im = *impl_;
  const MatMulPlan& plan = find_or_build(im.mutex, im.plans, {m}, [&] {
    MatMulPlan p;
    const auto pd = im.describe(m);
    p.product = dnnl::matmul(pd);
    p.a = pd.src_desc();
    p.y = pd.dst_desc();
    p.scratchpad = pd.scratchpad_desc();
    p.weights = weights_for(im.weights, pd.weights_desc());
    return p;
  });
  dnnl::stream stream(engine());
  std::vector<Tensor> keep;
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(plan.a, engine(), const_cast<void*>(a))},
      {DNNL_ARG_WEIGHTS, plan.weights},
      {DNNL_ARG_DST, memory(plan.y, engine(), y)},
      {DNNL_ARG_SCRATCHPAD, scratch(plan.scratchpad, keep)}};
  add_zero_points(args, &a_zero, im.requant.y_zero != 0 ? &im.requant.y_zero : nullptr);
  if (im.requant.scale_count > 0)
    args[DNNL_ARG_ATTR_OUTPUT_SCALES] =
        memory(memory::desc({im.requant.scale_count}, memory::data_type::f32, Tag::x), engine(),
               const_cast<float*>(scales));
  if (im.requant.bias)
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] =
        memory(memory::desc({1, im.n}, memory::data_type::f32, Tag::ab), engine(),
               const_cast<float*>(bias));
  plan.product.execute(stream, args);
  stream.wait();
}

}  // namespace graft::cpu
