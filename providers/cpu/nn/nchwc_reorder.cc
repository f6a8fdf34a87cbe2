// com.graft ReorderInput and ReorderOutput: the boundaries of a channel-blocked chain (nchwc.h).
//   ReorderInput(X[N, C, H, W]) -> [N, ceil(C / b), H, W, b], the padded channels zero;
//   ReorderOutput(X[N, ceil(C / b), H, W, b]) -> [N, C, H, W], attribute `channels` = C.
// Both are oneDNN reorders, built once per input shape.
#include <map>
#include <memory>
#include <mutex>

#include "exec/kernel.h"
#include "ir/names.h"
#include "providers/cpu/nn/nchwc.h"

namespace graft::cpu {

int64_t nchwc_block() {
  static const int64_t block = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core ? 16 : 8;
  return block;
}

Shape nchwc_shape(int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t block) {
  return {batch, (channels + block - 1) / block, height, width, block};
}

dnnl::memory::desc nchwc_desc(int64_t batch, int64_t channels, int64_t height, int64_t width,
                              int64_t block) {
  using Tag = dnnl::memory::format_tag;
  return {{batch, channels, height, width},
          dnnl::memory::data_type::f32,
          block == 16 ? Tag::nChw16c : Tag::nChw8c};
}

namespace {

using dnnl::memory;

// A reorder between two layouts.
struct Reorder {
  dnnl::reorder primitive;
  memory::desc from, to;
};

// One reorder per input shape, built on first use.
class ReorderCache {
 public:
  using Make = dnnl::reorder::primitive_desc (*)(const Shape& in, int64_t channels);

  Reorder get(const Shape& in, int64_t channels, Make make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = reorders_.find(in);
    if (it == reorders_.end()) {
      const auto pd = make(in, channels);
      it = reorders_.emplace(in, Reorder{dnnl::reorder(pd), pd.src_desc(), pd.dst_desc()}).first;
    }
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::map<Shape, Reorder> reorders_;
};

void run_reorder(const Reorder& r, const Tensor& from, Tensor& to) {
  memory src(r.from, dnnl_cpu_engine(), const_cast<float*>(from.data<float>()));
  memory dst(r.to, dnnl_cpu_engine(), to.data<float>());
  dnnl::stream stream(dnnl_cpu_engine());
  r.primitive.execute(stream, src, dst);
  stream.wait();
}

class ReorderInput : public Kernel {
 public:
  explicit ReorderInput(const KernelInfo&) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 4 || x.dtype() != DType::Float)
      ctx.fail("X must be a 4-D float tensor, got " + shape_to_string(x.shape()));
    const int64_t block = nchwc_block();
    Tensor& y =
        ctx.output(0, DType::Float, nchwc_shape(x.dim(0), x.dim(1), x.dim(2), x.dim(3), block));
    if (x.size() == 0) return;
    run_reorder(reorders_.get(x.shape(), x.dim(1), &build), x, y);
  }

 private:
  static dnnl::reorder::primitive_desc build(const Shape& in, int64_t) {
    const memory::desc plain(in, memory::data_type::f32, memory::format_tag::nchw);
    return {dnnl_cpu_engine(), plain, dnnl_cpu_engine(),
            nchwc_desc(in[0], in[1], in[2], in[3], nchwc_block())};
  }

  ReorderCache reorders_;
};

class ReorderOutput : public Kernel {
 public:
  explicit ReorderOutput(const KernelInfo& info) : channels_(info.required_int("channels")) {
    if (channels_ <= 0) info.fail("channels must be positive");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 5 || x.dtype() != DType::Float || (x.dim(4) != 8 && x.dim(4) != 16) ||
        x.dim(1) != (channels_ + x.dim(4) - 1) / x.dim(4))
      ctx.fail("X " + shape_to_string(x.shape()) + " is not a blocked float tensor of " +
               std::to_string(channels_) + " channels");
    Tensor& y = ctx.output(0, DType::Float, {x.dim(0), channels_, x.dim(2), x.dim(3)});
    if (y.size() == 0) return;
    run_reorder(reorders_.get(x.shape(), channels_, &build), x, y);
  }

 private:
  static dnnl::reorder::primitive_desc build(const Shape& in, int64_t channels) {
    const memory::desc plain({in[0], channels, in[2], in[3]}, memory::data_type::f32,
                             memory::format_tag::nchw);
    return {dnnl_cpu_engine(), nchwc_desc(in[0], channels, in[2], in[3], in[4]), dnnl_cpu_engine(),
            plain};
  }

  int64_t channels_;
  ReorderCache reorders_;
};

}  // namespace

GRAFT_CPU_KERNELS(nchwc_reorder) {
  reg.add({names::kDomain, "ReorderInput", 1, 1 << 30, {DType::Float}, 0, make<ReorderInput>});
  reg.add({names::kDomain, "ReorderOutput", 1, 1 << 30, {DType::Float}, 0, make<ReorderOutput>});
}

}  // namespace graft::cpu
