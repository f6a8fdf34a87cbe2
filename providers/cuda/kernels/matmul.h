// MatMul, Gemm and com.graft FusedMatMul as GEMM descriptions (blas.h) the backend runs: the
// shapes and attributes are read here, on the host; the products are the backend's.
//
// A broadcast batch is one strided batched GEMM when every operand is, over the batch axes, either
// one matrix (stride 0) or one matrix per output batch index (stride of a matrix); otherwise the
// leading batch axes that break it are looped over, one strided batched GEMM per index. A bias
// that is one value per column goes into the GEMM's epilogue; any other C is first copied into
// the output, broadcast, and accumulated onto with beta.
#pragma once

#include <string>
#include <vector>

#include "exec/matmul_shape.h"
#include "ir/api.h"
#include "ir/names.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/blas.h"

namespace graft::cuda {

// y[i] = x[index(i)]: C broadcast into the output before the GEMM accumulates onto it.
template <typename T>
struct BroadcastCopyFn {
  const T* x;
  T* y;
  StridedIndex index;
  GRAFT_HD void operator()(int64_t i) const { y[i] = x[index(i)]; }
};

// One GEMM description run at several places: the element offsets into A, B and C of each call.
struct GemmCalls {
  GemmDesc desc;
  std::vector<int64_t> a_offsets, b_offsets, c_offsets;
};

// The GEMMs of the product `s` (plan_matmul of the shapes MatMul sees) whose A is stored with
// its last two axes swapped when `trans_a`, B when `trans_b`; every operand is `dtype`, stored
// contiguously.
inline GemmCalls matmul_gemms(const MatMulShape& s, bool trans_a, bool trans_b, DType dtype) {
  const int64_t m = s.m, n = s.n, k = s.k;
  const size_t rank = s.batch.size();
  // The batch axes of A and B, padded on the left to the output's.
  auto padded = [rank](const Shape& operand) {
    Shape dims(rank - (operand.size() - 2), 1);
    dims.insert(dims.end(), operand.begin(), operand.end() - 2);
    return dims;
  };
  const Shape pa = padded(s.a), pb = padded(s.b);
  // The trailing batch axes over which A and B each keep one mode (one matrix for all, or one per
  // index) form the strided batch; axes of size 1 fit either mode.
  enum Mode { kUnset, kShared, kPerIndex };
  Mode mode_a = kUnset, mode_b = kUnset;
  size_t split = 0;
  for (size_t d = rank; d-- > 0;) {
    if (s.batch[d] == 1) continue;
    const Mode da = pa[d] == 1 ? kShared : kPerIndex, db = pb[d] == 1 ? kShared : kPerIndex;
    if ((mode_a != kUnset && mode_a != da) || (mode_b != kUnset && mode_b != db)) {
      split = d + 1;
      break;
    }
    mode_a = da;
    mode_b = db;
  }
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < rank; ++d) (d < split ? outer : inner) *= s.batch[d];

  GemmCalls calls;
  GemmDesc& g = calls.desc;
  g.a_type = g.b_type = g.c_type = dtype;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.m = m;
  g.n = n;
  g.k = k;
  g.batch = inner;
  g.lda = trans_a ? m : k;
  g.ldb = trans_b ? k : n;
  g.ldc = n;
  g.stride_a = mode_a == kShared ? 0 : m * k;
  g.stride_b = mode_b == kShared ? 0 : k * n;
  g.stride_c = m * n;
  // One B for every batch index and the rows of A's matrices stored one after another: a single
  // product of (batch * m) rows.
  if (outer == 1 && inner > 1 && g.stride_b == 0 && g.stride_a == m * k && !trans_a) {
    g.m = inner * m;
    g.batch = 1;
    g.stride_a = g.m * k;
    g.stride_c = g.m * n;
  }

  // Matrix strides of A's and B's batch axes, 0 where broadcast.
  std::vector<int64_t> step_a(rank, 0), step_b(rank, 0);
  for (int64_t d = static_cast<int64_t>(rank) - 1, sa = m * k, sb = k * n; d >= 0; --d) {
    if (pa[d] != 1) step_a[d] = sa;
    if (pb[d] != 1) step_b[d] = sb;
    sa *= pa[d];
    sb *= pb[d];
  }
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rest = o, a_offset = 0, b_offset = 0;
    for (size_t d = split; d-- > 0;) {
      const int64_t coord = rest % s.batch[d];
      rest /= s.batch[d];
      a_offset += coord * step_a[d];
      b_offset += coord * step_b[d];
    }
    calls.a_offsets.push_back(a_offset);
    calls.b_offsets.push_back(b_offset);
    calls.c_offsets.push_back(o * inner * m * n);
  }
  return calls;
}

// Runs `calls` on the backend over a, b and y; `bias` (or null) is the epilogue's.
template <class B>
void run_gemms(B& backend, const GemmCalls& calls, const Tensor& a, const Tensor& b, Tensor& y,
               const void* bias) {
  const size_t size = dtype_size(y.dtype());
  const auto* ap = static_cast<const char*>(a.raw());
  const auto* bp = static_cast<const char*>(b.raw());
  auto* yp = static_cast<char*>(y.raw());
  for (size_t i = 0; i < calls.c_offsets.size(); ++i) {
    backend.gemm(calls.desc, ap + calls.a_offsets[i] * size, bp + calls.b_offsets[i] * size,
                 yp + calls.c_offsets[i] * size, bias);
  }
}

// Copies `c` into `y`, read through `index`, so the GEMM can accumulate onto it.
template <class B>
void broadcast_into(B& backend, const Tensor& c, Tensor& y, const StridedIndex& index,
                    const std::string& who) {
  dispatch_device_float(y.dtype(), who.c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    backend.for_each(y.size(), BroadcastCopyFn<T>{c.data<T>(), y.data<T>(), index});
  });
}

// FusedMatMul's `activation` as a GEMM epilogue: only Relu has an exact one (cuBLASLt's Gelu is
// the tanh approximation, and there is none for Tanh or Sigmoid). The kernel declines a node with
// another activation, which then runs on the next provider.
GRAFT_API bool device_activation(const ir::Node& node);

// MatMul (NumPy semantics) and com.graft FusedMatMul (transA, transB, a bias C of one value per
// column or a single value, an activation device_activation accepts).
template <class B>
class MatMulKernel final : public DeviceKernel<B> {
 public:
  explicit MatMulKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        fused_(info.op_type() == "FusedMatMul"),
        trans_a_(fused_ && info.attr_int("transA", 0) != 0),
        trans_b_(fused_ && info.attr_int("transB", 0) != 0),
        relu_(fused_ && info.attr_string("activation", "") == "Relu") {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor* c = fused_ && ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (!fused_ && a.dtype() != b.dtype())
      ctx.fail(std::string("A is ") + dtype_name(a.dtype()) + " but B is " + dtype_name(b.dtype()));
    const MatMulShape s = fused_ ? plan_fused_matmul(ctx, a, b, c, trans_a_, trans_b_)
                                 : plan_matmul(ctx, a.shape(), b.shape());
    Tensor& y = ctx.output(0, a.dtype(), s.out);
    if (y.size() == 0) return;
    GemmCalls calls = matmul_gemms(s, trans_a_, trans_b_, a.dtype());
    calls.desc.tf32 = this->backend().use_tf32() && a.dtype() == DType::Float;
    if (relu_) calls.desc.epilogue = Epilogue::Relu;
    const void* bias = nullptr;
    if (c != nullptr && c->size() == s.n) {
      calls.desc.bias = true;
      bias = c->raw();
    } else if (c != nullptr) {
      broadcast_into(this->backend(), *c, y, strided_index({y.size()}, {0}, ctx.describe()),
                     ctx.describe());
      calls.desc.beta = 1.0;
    }
    run_gemms(this->backend(), calls, a, b, y, bias);
  }

 private:
  bool fused_, trans_a_, trans_b_, relu_;
};

// Gemm: Y = alpha * op(A) * op(B) + beta * C.
template <class B>
class GemmKernel final : public DeviceKernel<B> {
 public:
  explicit GemmKernel(const KernelInfo& info)
      : DeviceKernel<B>(info),
        trans_a_(info.attr_int("transA", 0) != 0),
        trans_b_(info.attr_int("transB", 0) != 0),
        alpha_(info.attr_float("alpha", 1.0f)),
        beta_(info.attr_float("beta", 1.0f)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Tensor* c = ctx.has_input(2) && beta_ != 0.0f ? &ctx.input(2) : nullptr;
    const GemmShape s = plan_gemm(ctx, a, b, c, trans_a_, trans_b_);
    Tensor& y = ctx.output(0, a.dtype(), {s.m, s.n});
    if (y.size() == 0) return;
    GemmDesc g;
    g.a_type = g.b_type = g.c_type = a.dtype();
    g.trans_a = trans_a_;
    g.trans_b = trans_b_;
    g.m = s.m;
    g.n = s.n;
    g.k = s.k;
    g.lda = a.dim(1);
    g.ldb = b.dim(1);
    g.ldc = s.n;
    g.stride_a = a.size();
    g.stride_b = b.size();
    g.stride_c = y.size();
    g.alpha = alpha_;
    g.tf32 = this->backend().use_tf32() && a.dtype() == DType::Float;
    const void* bias = nullptr;
    if (c != nullptr && s.c_rows == 1 && s.c_cols == s.n && beta_ == 1.0f) {
      g.bias = true;
      bias = c->raw();
    } else if (c != nullptr) {
      broadcast_into(this->backend(), *c, y, broadcast_index(c->shape(), y.shape(), ctx.describe()),
                     ctx.describe());
      g.beta = beta_;
    }
    this->backend().gemm(g, a.raw(), b.raw(), y.raw(), bias);
  }

 private:
  bool trans_a_, trans_b_;
  float alpha_, beta_;
};

template <class B>
void register_matmul(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "MatMul", 1, kAny, kDeviceFloatTypes, 0, make<MatMulKernel<B>>});
  // Gemm before 7 broadcast C only when told to; those models run on the CPU.
  reg.add({"", "Gemm", 7, kAny, kDeviceFloatTypes, 0, make<GemmKernel<B>>});
  reg.add({names::kDomain,
           "FusedMatMul",
           1,
           kAny,
           kDeviceFloatTypes,
           0,
           make<MatMulKernel<B>>,
           {},
           {},
           device_activation});
}

}  // namespace graft::cuda
