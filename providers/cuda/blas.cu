// CudaBackend::gemm through cuBLASLt, loaded on first use (library.h). cuBLASLt is column-major
// and graft row-major, so a row-major C = op(A) op(B) is run as the column-major
// C^T = op(B)^T op(A)^T: the operands swap places and each stored matrix is read as its own
// transpose, with no data moved.
//
// The descriptors live on the stack of each call; what is cached, per description and pointer
// alignments, is the algorithm cuBLASLt's heuristic picked and the workspace it needs, which comes
// from the provider's allocator for the call. An epilogue cuBLASLt has no algorithm for (a bias
// on double) runs as a kernel of its own after the product.
#include <cublasLt.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "exec/lru_cache.h"
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/library.h"

namespace graft::cuda {
namespace {

struct CublasLtApi {
  decltype(&cublasLtCreate) create;
  decltype(&cublasLtGetStatusString) status_string;
  decltype(&cublasLtMatmulDescInit_internal) matmul_desc_init;
  decltype(&cublasLtMatmulDescSetAttribute) matmul_desc_set;
  decltype(&cublasLtMatrixLayoutInit_internal) layout_init;
  decltype(&cublasLtMatrixLayoutSetAttribute) layout_set;
  decltype(&cublasLtMatmulPreferenceInit_internal) preference_init;
  decltype(&cublasLtMatmulPreferenceSetAttribute) preference_set;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
  decltype(&cublasLtMatmul) matmul;
};

const CublasLtApi& api() {
  static const CublasLtApi functions = [] {
    static const Library library("libcublasLt.so.13", "cuBLASLt (the CUDA provider's MatMul, Gemm)",
                                 "GRAFT_CUBLASLT_LIBRARY");
    CublasLtApi f;
    library.bind(f.create, "cublasLtCreate");
    library.bind(f.status_string, "cublasLtGetStatusString");
    library.bind(f.matmul_desc_init, "cublasLtMatmulDescInit_internal");
    library.bind(f.matmul_desc_set, "cublasLtMatmulDescSetAttribute");
    library.bind(f.layout_init, "cublasLtMatrixLayoutInit_internal");
    library.bind(f.layout_set, "cublasLtMatrixLayoutSetAttribute");
    library.bind(f.preference_init, "cublasLtMatmulPreferenceInit_internal");
    library.bind(f.preference_set, "cublasLtMatmulPreferenceSetAttribute");
    library.bind(f.heuristic, "cublasLtMatmulAlgoGetHeuristic");
    library.bind(f.matmul, "cublasLtMatmul");
    return f;
  }();
  return functions;
}

void check_status(cublasStatus_t status, const char* call, const GemmDesc& desc) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Fail(std::string(call) + " failed (" + api().status_string(status) + ") for " +
               describe(desc));
}

// A handle per device, made on first use there (the calling thread's current device is the
// provider's while its kernels run) and never destroyed, like the devices.
cublasLtHandle_t handle(int device) {
  static std::mutex mutex;
  static std::map<int, cublasLtHandle_t> handles;
  std::lock_guard lock(mutex);
  cublasLtHandle_t& h = handles[device];
  if (h == nullptr) {
    const cublasStatus_t status = api().create(&h);
    if (status != CUBLAS_STATUS_SUCCESS)
      throw Fail(std::string("cublasLtCreate failed on CUDA device ") + std::to_string(device) +
                 ": " + api().status_string(status));
  }
  return h;
}

cudaDataType_t cuda_type(DType dtype, const GemmDesc& desc) {
  switch (dtype) {
    case DType::Float:
      return CUDA_R_32F;
    case DType::Double:
      return CUDA_R_64F;
    case DType::Float16:
      return CUDA_R_16F;
    case DType::BFloat16:
      return CUDA_R_16BF;
    default:
      throw NotImplemented("cuBLASLt runs no " + describe(desc));
  }
}

// The largest power of two up to 256 that divides the address: what the heuristic may assume.
uint32_t alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a != 0) a /= 2;
  return a;
}

// A cached choice: the device, the description (alpha and beta left out: they do not change the
// choice) and the alignments of A, B, C and the bias.
struct PlanKey {
  int device;
  GemmDesc desc;
  uint32_t align_a, align_b, align_c, align_bias;
  auto operator<=>(const PlanKey&) const = default;
};

struct Plan {
  bool found = false;
  bool fused = true;  // false: the epilogue runs after the product, as a kernel of its own
  cublasLtMatmulAlgo_t algo;
  size_t workspace = 0;
};

// Distinct GEMM geometries a process keeps plans for; past it the least recently used go.
constexpr size_t kPlanCacheCapacity = 1024;
// The most workspace a plan may ask for (NVIDIA's advice for Hopper).
constexpr size_t kMaxWorkspace = 32u << 20;

LruCache<PlanKey, Plan>& plans() {
  static auto* cache = new LruCache<PlanKey, Plan>(kPlanCacheCapacity);
  return *cache;
}

// The descriptors of one call, on the stack.
struct Call {
  cublasLtMatmulDescOpaque_t op;
  cublasLtMatrixLayoutOpaque_t a, b, c;
};

void layout(cublasLtMatrixLayoutOpaque_t& l, cudaDataType_t type, int64_t rows, int64_t cols,
            int64_t ld, int64_t batch, int64_t stride, const GemmDesc& desc) {
  check_status(api().layout_init(&l, sizeof(l), type, static_cast<uint64_t>(rows),
                                 static_cast<uint64_t>(cols), ld),
               "cublasLtMatrixLayoutInit", desc);
  const auto count = static_cast<int32_t>(batch);
  check_status(api().layout_set(&l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
               "cublasLtMatrixLayoutSetAttribute", desc);
  check_status(
      api().layout_set(&l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)),
      "cublasLtMatrixLayoutSetAttribute", desc);
}

// The descriptors of `d` (with its epilogue when `fused`), in cuBLASLt's column-major terms.
void describe_call(Call& call, const GemmDesc& d, bool fused, const void* bias) {
  const bool wide = d.c_type == DType::Double;
  const cublasComputeType_t compute =
      wide ? CUBLAS_COMPUTE_64F : (d.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
  const cudaDataType_t scale = wide ? CUDA_R_64F : CUDA_R_32F;
  check_status(api().matmul_desc_init(&call.op, sizeof(call.op), compute, scale),
               "cublasLtMatmulDescInit", d);
  auto set = [&](cublasLtMatmulDescAttributes_t attr, const void* value, size_t bytes) {
    check_status(api().matmul_desc_set(&call.op, attr, value, bytes),
                 "cublasLtMatmulDescSetAttribute", d);
  };
  // The first operand is B (n x k as needed), the second A (k x m).
  const int32_t op_b = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int32_t op_a = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  set(CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof(op_b));
  set(CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof(op_a));
  if (fused && (d.bias || d.epilogue != Epilogue::None)) {
    uint32_t epilogue = d.epilogue == Epilogue::Relu   ? CUBLASLT_EPILOGUE_RELU
                        : d.epilogue == Epilogue::Gelu ? CUBLASLT_EPILOGUE_GELU
                                                       : CUBLASLT_EPILOGUE_DEFAULT;
    if (d.bias) {
      epilogue |= CUBLASLT_EPILOGUE_BIAS;
      const int32_t bias_type = cuda_type(d.c_type, d);
      set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type));
      set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
    }
    set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue));
  }
  if (d.trans_b) {
    layout(call.b, cuda_type(d.b_type, d), d.k, d.n, d.ldb, d.batch, d.stride_b, d);
  } else {
    layout(call.b, cuda_type(d.b_type, d), d.n, d.k, d.ldb, d.batch, d.stride_b, d);
  }
  if (d.trans_a) {
    layout(call.a, cuda_type(d.a_type, d), d.m, d.k, d.lda, d.batch, d.stride_a, d);
  } else {
    layout(call.a, cuda_type(d.a_type, d), d.k, d.m, d.lda, d.batch, d.stride_a, d);
  }
  layout(call.c, cuda_type(d.c_type, d), d.n, d.m, d.ldc, d.batch, d.stride_c, d);
}

Plan choose(cublasLtHandle_t lt, Call& call, const PlanKey& key) {
  const GemmDesc& d = key.desc;
  cublasLtMatmulPreferenceOpaque_t preference;
  check_status(api().preference_init(&preference, sizeof(preference)),
               "cublasLtMatmulPreferenceInit", d);
  auto prefer = [&](cublasLtMatmulPreferenceAttributes_t attr, const void* value, size_t bytes) {
    check_status(api().preference_set(&preference, attr, value, bytes),
                 "cublasLtMatmulPreferenceSetAttribute", d);
  };
  const uint64_t workspace = kMaxWorkspace;
  prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  // A is cuBLASLt's B and B its A.
  prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.align_b, sizeof(key.align_b));
  prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.align_a, sizeof(key.align_a));
  prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.align_c, sizeof(key.align_c));
  prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.align_c, sizeof(key.align_c));
  cublasLtMatmulHeuristicResult_t result;
  std::memset(&result, 0, sizeof(result));
  int count = 0;
  const cublasStatus_t status = api().heuristic(lt, &call.op, &call.b, &call.a, &call.c, &call.c,
                                                &preference, 1, &result, &count);
  Plan plan;
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) return plan;
  check_status(status, "cublasLtMatmulAlgoGetHeuristic", d);
  if (count == 0) return plan;
  plan.found = true;
  plan.algo = result.algo;
  plan.workspace = result.workspaceSize;
  return plan;
}

// C = epilogue(beta * C + bias) over every element of the description's C: the epilogue of a
// product cuBLASLt ran without it (beta 1), or the whole result when K is 0.
template <typename T>
struct GemmEpilogueFn {
  T* c;
  const T* bias;
  int64_t m, n, ldc, stride_c;
  Acc<T> beta;
  Epilogue epilogue;
  GRAFT_HD void operator()(int64_t i) const {
    const int64_t matrix = i / (m * n), row = i % (m * n) / n, col = i % n;
    T& out = c[matrix * stride_c + row * ldc + col];
    Acc<T> v = beta != Acc<T>(0) ? beta * widen(out) : Acc<T>(0);
    if (bias != nullptr) v += widen(bias[col]);
    if (epilogue == Epilogue::Relu) {
      v = v > Acc<T>(0) ? v : Acc<T>(0);
    } else if (epilogue == Epilogue::Gelu) {
      const Acc<T> inner = Acc<T>(0.7978845608028654) * (v + Acc<T>(0.044715) * v * v * v);
      v = Acc<T>(0.5) * v * (Acc<T>(1) + math_tanh(inner));
    }
    out = narrow<T>(v);
  }
};

void run_epilogue(const CudaBackend& backend, const GemmDesc& d, void* c, const void* bias,
                  double beta) {
  dispatch_device_float(d.c_type, "GEMM epilogue", [&](auto tag) {
    using T = typename decltype(tag)::type;
    backend.for_each(
        d.batch * d.m * d.n,
        GemmEpilogueFn<T>{static_cast<T*>(c), d.bias ? static_cast<const T*>(bias) : nullptr, d.m,
                          d.n, d.ldc, d.stride_c, static_cast<Acc<T>>(beta), d.epilogue});
  });
}

}  // namespace

void CudaBackend::gemm(const GemmDesc& desc, const void* a, const void* b, void* c,
                       const void* bias) const {
  check_gemm(desc);
  if (desc.bias && bias == nullptr) throw InvalidArgument("no bias given to a " + describe(desc));
  if (desc.m == 0 || desc.n == 0 || desc.batch == 0) return;
  if (desc.batch > INT32_MAX) throw NotImplemented("cuBLASLt runs no " + describe(desc));
  if (desc.k == 0) {
    run_epilogue(*this, desc, c, bias, desc.beta);
    return;
  }
  PlanKey key{device_,      desc,         alignment(a),
              alignment(b), alignment(c), desc.bias ? alignment(bias) : 256};
  key.desc.alpha = key.desc.beta = 0.0;
  const bool has_epilogue = desc.bias || desc.epilogue != Epilogue::None;
  cublasLtHandle_t lt = handle(device_);
  Call call;
  std::shared_ptr<Plan> plan = plans().find(key);
  if (plan == nullptr) {
    describe_call(call, desc, true, bias);
    Plan chosen = choose(lt, call, key);
    if (!chosen.found && has_epilogue) {
      describe_call(call, desc, false, bias);
      chosen = choose(lt, call, key);
      chosen.fused = false;
    }
    if (!chosen.found) throw NotImplemented("cuBLASLt has no algorithm for " + describe(desc));
    plan = plans().insert(key, std::make_shared<Plan>(chosen));
  }
  describe_call(call, desc, plan->fused, bias);
  void* workspace = plan->workspace > 0 ? allocator_.allocate(plan->workspace) : nullptr;
  const double alpha64 = desc.alpha, beta64 = desc.beta;
  const float alpha32 = static_cast<float>(desc.alpha), beta32 = static_cast<float>(desc.beta);
  const bool wide = desc.c_type == DType::Double;
  const cublasStatus_t status =
      api().matmul(lt, &call.op, wide ? static_cast<const void*>(&alpha64) : &alpha32, b, &call.b,
                   a, &call.a, wide ? static_cast<const void*>(&beta64) : &beta32, c, &call.c, c,
                   &call.c, &plan->algo, workspace, plan->workspace, stream_);
  // Stream-ordered: the memory is reused only by work enqueued after the product.
  if (workspace != nullptr) allocator_.release(workspace, plan->workspace);
  check_status(status, "cublasLtMatmul", desc);
  if (has_epilogue && !plan->fused) run_epilogue(*this, desc, c, bias, 1.0);
}

}  // namespace graft::cuda
