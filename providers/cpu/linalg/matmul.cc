// MatMul: NumPy matmul semantics (batch broadcasting, 1-D operands promoted and squeezed). A
// 2-D float B that is an initializer is packed once (packed_gemm.h) and every batch of A runs
// as one product against it.
#include <omp.h>

#include <memory>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"
#include "providers/cpu/linalg/packed_gemm.h"

namespace graft {
namespace {

class MatMul : public Kernel {
 public:
  explicit MatMul(const KernelInfo& info) : packed_(cpu::pack_constant(info, 1, false)) {}

  std::vector<int> packed_inputs() const override {
    return packed_ ? std::vector<int>{1} : std::vector<int>{};
  }

  void compute(KernelContext& ctx) override {
    if (packed_) return compute_packed(ctx);
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != b.dtype())
      ctx.fail(std::string("A is ") + dtype_name(a.dtype()) + " but B is " + dtype_name(b.dtype()));
    const MatMulShape plan = plan_matmul(ctx, a.shape(), b.shape());
    const Shape &as = plan.a, &batch = plan.batch;
    const int64_t m = plan.m, k = plan.k, n = plan.n;
    const std::vector<int64_t>&a_index = plan.a_index, &b_index = plan.b_index;
    Tensor& y = ctx.output(0, a.dtype(), plan.out);
    const int64_t batch_count = shape_size(batch);
    if (y.size() == 0) return;

    dispatch_number(a.dtype(), "MatMul", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* ap = a.data<T>();
      const T* bp = b.data<T>();
      T* yp = y.data<T>();
      // One B for every batch and A not broadcast: a single (batch*M) x K product.
      const bool single_b = b.size() == k * n;
      if (single_b && shape_size(Shape(as.begin(), as.end() - 2)) == batch_count) {
        cpu::gemm<T>(false, false, batch_count * m, n, k, ap, bp, yp);
        return;
      }
      const bool parallel = batch_count >= omp_get_max_threads() && m * n * k < (1 << 21);
#pragma omp parallel for if (parallel)
      for (int64_t i = 0; i < batch_count; ++i) {
        cpu::gemm<T>(false, false, m, n, k, ap + a_index[static_cast<size_t>(i)] * m * k,
                     bp + b_index[static_cast<size_t>(i)] * k * n, yp + i * m * n);
      }
    });
  }

 private:
  void compute_packed(KernelContext& ctx) {
    const Tensor& a = ctx.input(0);
    const Tensor& b = packed_->source();
    if (a.dtype() != b.dtype())
      ctx.fail(std::string("A is ") + dtype_name(a.dtype()) + " but B is " + dtype_name(b.dtype()));
    const MatMulShape plan = plan_matmul(ctx, a.shape(), b.shape());
    Tensor& y = ctx.output(0, a.dtype(), plan.out);
    if (y.size() == 0) return;
    cpu::packed_gemm(shape_size(plan.batch) * plan.m, a.data<float>(), plan.k, *packed_, nullptr,
                     cpu::Activation::None, y.data<float>(), plan.n);
  }

  std::unique_ptr<const cpu::PackedB> packed_;
};

const std::vector<DType> kMatMulTypes = {DType::Float,    DType::Double, DType::Float16,
                                         DType::BFloat16, DType::Int32,  DType::Int64,
                                         DType::UInt32,   DType::UInt64};

}  // namespace

GRAFT_CPU_KERNELS(matmul) { reg.add({"", "MatMul", 1, 1 << 30, kMatMulTypes, 0, make<MatMul>}); }

}  // namespace graft
