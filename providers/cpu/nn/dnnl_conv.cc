#include "providers/cpu/nn/dnnl_conv.h"

#include <algorithm>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>

#include "exec/error.h"
#include "exec/tensor.h"
#include "providers/cpu/nn/block_reorder.h"
#include "providers/cpu/nn/nchwc.h"
#include "providers/cpu/nn/primitive_cache.h"

namespace graft::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
// The forward pass is direct convolution: its outputs are what inference returns, and Winograd's
// rounding (about 1e-5 of the output scale) would set graft apart from other runtimes. The
// backward-data pass may use Winograd (see prefers_winograd); its backward-weights pass measured
// slower than the direct one here.
constexpr auto kForwardAlgorithm = dnnl::algorithm::convolution_direct;
constexpr auto kWeightsAlgorithm = dnnl::algorithm::convolution_direct;

// oneDNN's Winograd backward-data pass computes 4x4 output tiles and transforms the whole weight
// tensor and every tile of dY on each call. It pays off for 3x3 stride-1 layers with enough
// tiles and channels to amortize those transforms; below, the direct pass is faster. The rule was
// read off single-threaded measurements on AVX-512 (Winograd time over direct time, 3x3 layers
// with C = M channels): at 2x2 outputs a tile is mostly padding and Winograd loses at every
// batch (2.3 to 15 times slower); at 4x4, 512 channels give 1.37 at batch 8 (8 tiles) and 0.63
// at batch 32, 64 channels 1.01 at batch 16 and 0.78 at batch 32; at 8x8, 512 channels give 1.13
// at batch 2 and 0.73 at batch 4; 16 channels hover about 1 everywhere. oneDNN's own choice
// (convolution_auto) looks at the batch only and picks Winograd for 2x2 outputs.
constexpr int64_t kWinogradTile = 4;
constexpr int64_t kWinogradMinTiles = 16;
constexpr int64_t kWinogradMinChannels = 32;
constexpr int64_t kWinogradMinTileChannels = 2048;

bool prefers_winograd(const DnnlConvShape& s) {
  const bool geometry = s.group == 1 && s.kernel[0] == 3 && s.kernel[1] == 3 && s.strides[0] == 1 &&
                        s.strides[1] == 1 && s.dilations[0] == 1 && s.dilations[1] == 1;
  if (!geometry || s.out[0] < kWinogradTile || s.out[1] < kWinogradTile) return false;
  const int64_t tiles = s.batch * ((s.out[0] + kWinogradTile - 1) / kWinogradTile) *
                        ((s.out[1] + kWinogradTile - 1) / kWinogradTile);
  const int64_t channels = std::min(s.channels, s.maps);
  return tiles >= kWinogradMinTiles && channels >= kWinogradMinChannels &&
         tiles * channels >= kWinogradMinTileChannels;
}

dnnl::engine& engine() { return dnnl_cpu_engine(); }

enum class Pass { Forward, BackwardData, BackwardWeights };

struct Descs {
  memory::desc src, weights, dst, bias;
  memory::dims strides, dilates, pad_l, pad_r;
};

Descs descs(const DnnlConvShape& s, Tag tag) {
  Descs d;
  const memory::dims src = {s.batch, s.channels, s.in[0], s.in[1]};
  const memory::dims dst = {s.batch, s.maps, s.out[0], s.out[1]};
  memory::dims weights = {s.maps, s.channels / s.group, s.kernel[0], s.kernel[1]};
  if (s.group > 1) weights.insert(weights.begin(), s.group), weights[1] /= s.group;
  const Tag weights_tag = tag == Tag::any ? Tag::any : (s.group > 1 ? Tag::goihw : Tag::oihw);
  d.src = memory::desc(src, kF32, tag);
  d.dst = memory::desc(dst, kF32, tag);
  d.weights = memory::desc(weights, kF32, weights_tag);
  d.bias = memory::desc({s.maps}, kF32, Tag::x);
  d.strides = {s.strides[0], s.strides[1]};
  d.dilates = {s.dilations[0] - 1, s.dilations[1] - 1};
  d.pad_l = {s.pads[0], s.pads[1]};
  d.pad_r = {s.pads[2], s.pads[3]};
  return d;
}

// The 16x16-blocked layout `inner` as block_reorder.h takes it, when `plain` is dense [A, B, H, W]
// and `inner` blocks A and B by 16, b-major, with no padding; nullopt otherwise (oneDNN's reorder
// then runs: for the a-major blocks of the backward-data weights it measured faster).
std::optional<Blocked16> blocked16(const memory::desc& plain, const memory::desc& inner) {
  const dnnl_memory_desc_t& d = inner.data;
  if (d.ndims != 4 || d.format_kind != dnnl_blocked || d.offset0 != 0 || d.extra.flags != 0 ||
      d.data_type != dnnl_f32 || plain != memory::desc(inner.dims(), kF32, Tag::abcd))
    return std::nullopt;
  const auto& b = d.format_desc.blocking;
  const bool block_pair = b.inner_nblks == 2 && b.inner_blks[0] == 16 && b.inner_blks[1] == 16 &&
                          b.inner_idxs[0] == 1 && b.inner_idxs[1] == 0;
  if (!block_pair) return std::nullopt;
  Blocked16 l{};
  for (int i = 0; i < 4; ++i) {
    if (d.padded_dims[i] != d.dims[i] || d.padded_offsets[i] != 0) return std::nullopt;
    l.dims[i] = d.dims[i];
    l.strides[i] = b.strides[i];
  }
  if (l.dims[0] % 16 != 0 || l.dims[1] % 16 != 0) return std::nullopt;
  return l;
}

// How one argument moves between graft's plain layout and oneDNN's, built once: graft's copies
// for the 16x16-blocked weight layouts (block_reorder.h), oneDNN's reorders otherwise (making a
// reorder primitive per call costs a lookup in oneDNN's primitive cache and more).
class LayoutCopy {
 public:
  LayoutCopy(const memory::desc& plain, const memory::desc& inner)
      : blocked_(blocked16(plain, inner)) {
    if (!blocked_) {
      into_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), plain, engine(), inner));
      back_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), inner, engine(), plain));
    }
  }

  void to_inner(dnnl::stream& stream, memory& user, memory& internal) const {
    if (blocked_)
      copy_to_blocked(*blocked_, static_cast<const float*>(user.get_data_handle()),
                      static_cast<float*>(internal.get_data_handle()));
    else
      into_.execute(stream, user, internal);
  }

  // After the primitive that wrote `internal`: graft's copy waits for the stream first.
  void to_plain(dnnl::stream& stream, memory& internal, memory& user) const {
    if (blocked_) {
      stream.wait();
      copy_from_blocked(*blocked_, static_cast<const float*>(internal.get_data_handle()),
                        static_cast<float*>(user.get_data_handle()));
    } else {
      back_.execute(stream, internal, user);
    }
  }

 private:
  std::optional<Blocked16> blocked_;
  dnnl::reorder into_, back_;
};

// One cached primitive with the layouts it wants and the plain layouts graft holds.
struct Entry {
  dnnl::primitive primitive;
  memory::desc scratchpad;
  // Per argument: oneDNN's layout and graft's plain one (equal when no reorder is needed).
  std::map<int, std::pair<memory::desc, memory::desc>> layouts;
  // Per argument whose layouts differ: how it moves between them.
  std::map<int, LayoutCopy> copies;
};

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc forward_pd(const DnnlConvShape& s, bool bias) {
  const Descs any = descs(s, Tag::any);
  if (bias) {
    return {{dnnl::prop_kind::forward_training, kForwardAlgorithm, any.src, any.weights, any.bias,
             any.dst, any.strides, any.dilates, any.pad_l, any.pad_r},
            user_scratchpad(),
            engine()};
  }
  return {{dnnl::prop_kind::forward_training, kForwardAlgorithm, any.src, any.weights, any.dst,
           any.strides, any.dilates, any.pad_l, any.pad_r},
          user_scratchpad(),
          engine()};
}

std::shared_ptr<Entry> build(const DnnlConvShape& s, Pass pass, bool bias) {
  const Descs plain = descs(s, Tag::nchw);
  const Descs any = descs(s, Tag::any);
  auto e = std::make_shared<Entry>();
  const auto fwd = forward_pd(s, bias && pass == Pass::Forward);
  if (pass == Pass::Forward) {
    e->primitive = dnnl::convolution_forward(fwd);
    e->scratchpad = fwd.scratchpad_desc();
    e->layouts[DNNL_ARG_SRC] = {fwd.src_desc(), plain.src};
    e->layouts[DNNL_ARG_WEIGHTS] = {fwd.weights_desc(), plain.weights};
    e->layouts[DNNL_ARG_DST] = {fwd.dst_desc(), plain.dst};
    if (bias) e->layouts[DNNL_ARG_BIAS] = {fwd.bias_desc(), plain.bias};
  } else if (pass == Pass::BackwardData) {
    auto make = [&](dnnl::algorithm algorithm) {
      return dnnl::convolution_backward_data::primitive_desc(
          {algorithm, any.src, any.weights, any.dst, any.strides, any.dilates, any.pad_l,
           any.pad_r},
          user_scratchpad(), engine(), fwd);
    };
    dnnl::convolution_backward_data::primitive_desc pd;
    // Winograd kernels exist for some instruction sets only: elsewhere the direct pass runs.
    try {
      pd = make(prefers_winograd(s) ? dnnl::algorithm::convolution_winograd
                                    : dnnl::algorithm::convolution_direct);
    } catch (const dnnl::error&) {
      pd = make(dnnl::algorithm::convolution_direct);
    }
    e->primitive = dnnl::convolution_backward_data(pd);
    e->scratchpad = pd.scratchpad_desc();
    e->layouts[DNNL_ARG_DIFF_DST] = {pd.diff_dst_desc(), plain.dst};
    e->layouts[DNNL_ARG_WEIGHTS] = {pd.weights_desc(), plain.weights};
    e->layouts[DNNL_ARG_DIFF_SRC] = {pd.diff_src_desc(), plain.src};
  } else {
    auto make = [&]() -> dnnl::convolution_backward_weights::primitive_desc {
      if (bias) {
        return {{kWeightsAlgorithm, any.src, any.weights, any.bias, any.dst, any.strides,
                 any.dilates, any.pad_l, any.pad_r},
                user_scratchpad(),
                engine(),
                fwd};
      }
      return {{kWeightsAlgorithm, any.src, any.weights, any.dst, any.strides, any.dilates,
               any.pad_l, any.pad_r},
              user_scratchpad(),
              engine(),
              fwd};
    };
    const auto pd = make();
    e->primitive = dnnl::convolution_backward_weights(pd);
    e->scratchpad = pd.scratchpad_desc();
    e->layouts[DNNL_ARG_SRC] = {pd.src_desc(), plain.src};
    e->layouts[DNNL_ARG_DIFF_DST] = {pd.diff_dst_desc(), plain.dst};
    e->layouts[DNNL_ARG_DIFF_WEIGHTS] = {pd.diff_weights_desc(), plain.weights};
    if (bias) e->layouts[DNNL_ARG_DIFF_BIAS] = {pd.diff_bias_desc(), plain.bias};
  }
  for (const auto& [arg, layout] : e->layouts) {
    const auto& [inner, outer] = layout;
    if (inner == outer) continue;
    e->copies.emplace(arg, LayoutCopy(outer, inner));
  }
  return e;
}

using ConvKey = std::vector<int64_t>;

PrimitiveCache<ConvKey, Entry>& cache() {
  static PrimitiveCache<ConvKey, Entry> c;
  return c;
}

std::shared_ptr<Entry> cached(const DnnlConvShape& s, Pass pass, bool bias) {
  ConvKey key = {static_cast<int64_t>(pass), bias, s.batch, s.channels, s.maps, s.group};
  for (int i = 0; i < 2; ++i) {
    key.insert(key.end(), {s.in[i], s.kernel[i], s.out[i], s.strides[i], s.dilations[i], s.pads[i],
                           s.pads[i + 2]});
  }
  return cache().find_or_build(key, [&] {
    try {
      return build(s, pass, bias);
    } catch (const dnnl::error& e) {
      throw Fail(std::string("oneDNN could not build a convolution: ") + e.what());
    }
  });
}

// Scratch memory of oneDNN's layout for one call, from graft's caching allocator.
memory scratch(const memory::desc& desc, std::vector<Tensor>& keep) {
  const auto floats = static_cast<int64_t>((desc.get_size() + sizeof(float) - 1) / sizeof(float));
  keep.push_back(Tensor::empty(DType::Float, Shape{std::max<int64_t>(floats, 1)}));
  return memory(desc, engine(), keep.back().data<float>());
}

// Inputs already reordered within one call sequence (backward data and weights both read dY):
// graft's buffer, oneDNN's layout and the reordered copy.
struct Reordered {
  const float* plain;
  memory::desc layout;
  memory copy;
};

// Runs `e` on graft's plain buffers: inputs are reordered into oneDNN's layouts first (or taken
// from `shared`, which also receives the new copies), outputs reordered back after. `keep` owns
// the scratch buffers until the caller is done with them.
void execute(const Entry& e, const std::map<int, const float*>& inputs,
             const std::map<int, float*>& outputs, std::vector<Tensor>& keep,
             std::vector<Reordered>& shared) {
  dnnl::stream stream(engine());
  std::unordered_map<int, memory> args;
  std::vector<std::tuple<const LayoutCopy*, memory, memory>> copy_back;
  for (const auto& [arg, layout] : e.layouts) {
    // Named, not bound: lambdas below capture them (clang before 16 cannot capture bindings).
    const auto& inner = layout.first;
    const auto& plain = layout.second;
    auto in = inputs.find(arg);
    float* ptr = in != inputs.end() ? const_cast<float*>(in->second) : outputs.at(arg);
    memory user(plain, engine(), ptr);
    if (inner == plain) {
      args[arg] = user;
      continue;
    }
    if (in != inputs.end()) {
      auto done = std::find_if(shared.begin(), shared.end(), [&](const Reordered& r) {
        return r.plain == in->second && r.layout == inner;
      });
      if (done != shared.end()) {
        args[arg] = done->copy;
        continue;
      }
    }
    memory internal = scratch(inner, keep);
    const LayoutCopy& copy = e.copies.at(arg);
    if (in != inputs.end()) {
      copy.to_inner(stream, user, internal);
      shared.push_back({in->second, inner, internal});
    } else {
      copy_back.emplace_back(&copy, internal, user);
    }
    args[arg] = internal;
  }
  if (e.scratchpad.get_size() > 0) args[DNNL_ARG_SCRATCHPAD] = scratch(e.scratchpad, keep);
  e.primitive.execute(stream, args);
  for (auto& [copy, internal, user] : copy_back) copy->to_plain(stream, internal, user);
  stream.wait();
}

}  // namespace

dnnl::engine& dnnl_cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

std::size_t dnnl_conv_cached_primitives() { return cache().size(); }

bool dnnl_conv_supported(const DnnlConvShape& s) {
  return s.group >= 1 && s.channels % s.group == 0 && s.maps % s.group == 0 && s.batch > 0;
}

void dnnl_conv_forward(const DnnlConvShape& s, const float* x, const float* w, const float* b,
                       float* y) {
  const auto e = cached(s, Pass::Forward, b != nullptr);
  std::map<int, const float*> in = {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}};
  if (b) in[DNNL_ARG_BIAS] = b;
  std::vector<Tensor> keep;
  std::vector<Reordered> shared;
  execute(*e, in, {{DNNL_ARG_DST, y}}, keep, shared);
}

void dnnl_conv_backward(const DnnlConvShape& s, const float* x, const float* w, const float* dy,
                        float* dx, float* dw, float* db) {
  std::vector<Tensor> keep;
  std::vector<Reordered> shared;
  if (dx) {
    const auto e = cached(s, Pass::BackwardData, false);
    execute(*e, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}}, {{DNNL_ARG_DIFF_SRC, dx}}, keep,
            shared);
  }
  if (dw) {
    const auto e = cached(s, Pass::BackwardWeights, db != nullptr);
    std::map<int, float*> out = {{DNNL_ARG_DIFF_WEIGHTS, dw}};
    if (db) out[DNNL_ARG_DIFF_BIAS] = db;
    execute(*e, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}}, out, keep, shared);
  }
}

}  // namespace graft::cpu
