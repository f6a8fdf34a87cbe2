// Times oneDNN convolutions of ResNet-50's and MobileNetV2's shapes as graft runs them: f32 in the
// channel-blocked layout (nChw8c, the NchwcConv chain) and u8 x s8 -> u8 channels-last (the
// NhwcQLinearConv chain), weights in the layout the primitive picks. Compiles against the oneDNN
// 2.x or 3.x API, so that two oneDNN builds can be compared on this machine:
//
//   bash bench/onednn_versions.sh /path/to/other/onednn/prefix
//
// Prints one line per convolution: the median of the timed runs in microseconds.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

using dnnl::memory;
using Tag = memory::format_tag;

namespace {

struct Shape {
  const char* name;
  int64_t batch, channels, maps, group, size, kernel, stride;
};

double median_us(const std::function<void()>& run, int reps) {
  run();
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t = std::chrono::steady_clock::now();
    run();
    times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double time_conv(dnnl::engine& eng, const Shape& s, bool int8, int reps) {
  const int64_t pad = s.kernel / 2, out = (s.size + 2 * pad - s.kernel) / s.stride + 1;
  const memory::dims src_dims = {s.batch, s.channels, s.size, s.size};
  const memory::dims dst_dims = {s.batch, s.maps, out, out};
  const memory::dims w_dims = s.group > 1 ? memory::dims{s.group, s.maps / s.group,
                                                         s.channels / s.group, s.kernel, s.kernel}
                                          : memory::dims{s.maps, s.channels, s.kernel, s.kernel};
  const auto act = int8 ? memory::data_type::u8 : memory::data_type::f32;
  const auto wt = int8 ? memory::data_type::s8 : memory::data_type::f32;
  const Tag layout = int8 ? Tag::nhwc : Tag::nChw8c;
  // As graft's chains: a convolution of at most 4 channels reads its input plain.
  const memory::desc src(src_dims, act, s.channels <= 4 && !int8 ? Tag::nchw : layout);
  const memory::desc dst(dst_dims, act, layout);
  const memory::desc w(w_dims, wt, Tag::any),
      b({s.maps}, int8 ? memory::data_type::s32 : wt, Tag::x);
  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  ops.append_eltwise(
#if DNNL_VERSION_MAJOR < 3
      1.0f,
#endif
      dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  attr.set_post_ops(ops);
#if DNNL_VERSION_MAJOR >= 3
  if (int8) attr.set_scales_mask(DNNL_ARG_WEIGHTS, 0);
  const dnnl::convolution_forward::primitive_desc pd(
      eng, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, w, b, dst,
      {s.stride, s.stride}, {0, 0}, {pad, pad}, {pad, pad}, attr);
#else
  if (int8) attr.set_output_scales(0, {0.01f});
  const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                          dnnl::algorithm::convolution_direct, src, w, b, dst,
                                          {s.stride, s.stride}, {0, 0}, {pad, pad}, {pad, pad});
  const dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
#endif
  dnnl::convolution_forward conv(pd);
  memory msrc(src, eng), mdst(dst, eng), mw(pd.weights_desc(), eng), mb(b, eng);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, mdst}};
  for (const auto& [arg, m] : args) {
    auto* p = static_cast<char*>(m.get_data_handle());
    std::fill(p, p + m.get_desc().get_size(), static_cast<char>(1));
  }
#if DNNL_VERSION_MAJOR >= 3
  float scale = 0.01f;
  memory mscale({{1}, memory::data_type::f32, Tag::x}, eng, &scale);
  if (int8) args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS] = mscale;
#endif
  dnnl::stream stream(eng);
  return median_us([&] { conv.execute(stream, args), stream.wait(); }, reps);
}

}  // namespace

int main() {
  const auto v = dnnl::version();
  std::printf("oneDNN %d.%d.%d, %d OpenMP threads\n", v->major, v->minor, v->patch,
              omp_get_max_threads());
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  const std::vector<Shape> shapes = {
      {"resnet50 stem 7x7/2", 1, 3, 64, 1, 224, 7, 2},
      {"resnet50 3x3 64", 1, 64, 64, 1, 56, 3, 1},
      {"resnet50 1x1 64->256", 1, 64, 256, 1, 56, 1, 1},
      {"resnet50 3x3 256", 1, 256, 256, 1, 14, 3, 1},
      {"resnet50 1x1 1024->256", 1, 1024, 256, 1, 14, 1, 1},
      {"resnet50 3x3 512", 1, 512, 512, 1, 7, 3, 1},
      {"resnet50 3x3 64 b8", 8, 64, 64, 1, 56, 3, 1},
      {"resnet50 1x1 1024->256 b8", 8, 1024, 256, 1, 14, 1, 1},
      {"mobilenetv2 dw 3x3 144", 1, 144, 144, 144, 56, 3, 1},
      {"mobilenetv2 dw 3x3 960", 1, 960, 960, 960, 7, 3, 1},
      {"mobilenetv2 1x1 32->192", 1, 32, 192, 1, 28, 1, 1},
  };
  for (bool int8 : {false, true}) {
    for (const Shape& s : shapes) {
      if (int8 && s.group > 1) continue;
      std::printf("%-6s %-28s %10.1f us\n", int8 ? "u8s8" : "f32", s.name,
                  time_conv(eng, s, int8, s.batch > 1 ? 20 : 50));
    }
  }
}
