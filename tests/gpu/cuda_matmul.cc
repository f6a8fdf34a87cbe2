// The CUDA provider's matrix products on a CUDA device, through cuBLASLt. First, on any machine:
// the library loader (providers/cuda/library.h) names a missing library and finds cuBLASLt.
// Then, on a device: CudaBackend::gemm against the host reference (HostBackend::gemm,
// tests/providers/cuda_host/host_blas.cc) over GEMM descriptions no kernel writes yet (epilogues,
// TF32, leading dimensions wider than rows, shared batch matrices, misaligned pointers, a bias on
// double), each run twice (the cached plan); and MatMul, Gemm and com.graft FusedMatMul sessions
// against the CPU provider, float32 without and with TF32, float16 and bfloat16. The host tests
// (tests/providers/cuda_host/test_matmul.cc) cover every shape case on the device when run with
// GRAFT_TEST_DEVICE=cuda. Exits 1 when a check fails, else 77 (skipped) with the reason printed
// when no CUDA device is present, else 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "exec/session.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/device.h"
#include "providers/cuda/kernels/blas.h"
#include "providers/cuda/library.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::cuda {

// CudaBackend(device, stream, memory, desc.tf32).gemm(desc, a, b, c, bias), from
// cuda_matmul_device.cu (the backend's header is nvcc's).
void gemm_on_device(int device, cudaStream_t stream, Allocator& memory, const GemmDesc& desc,
                    const void* a, const void* b, void* c, const void* bias);

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("  %-86s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void loader() {
  std::printf("library loader:\n");
  const Library missing("libgraft_no_such_library.so.7", "a library no machine has",
                        "GRAFT_TEST_NO_SUCH_LIBRARY");
  expect(!missing.load() && contains(missing.error(), "libgraft_no_such_library.so.7") &&
             contains(missing.error(), "GRAFT_TEST_NO_SUCH_LIBRARY"),
         "a missing library is named, with the variable that can point at it");
  bool refused = false;
  try {
    missing.address("anything");
  } catch (const NotImplemented& e) {
    refused = contains(e.what(), "a library no machine has");
  }
  expect(refused, "calling into it throws NotImplemented naming what it is for");
  const Library cublas_lt("libcublasLt.so.13", "cuBLASLt", "GRAFT_CUBLASLT_LIBRARY");
  expect(cublas_lt.load() && cublas_lt.address("cublasLtMatmul") != nullptr,
         "libcublasLt.so.13 loads and has cublasLtMatmul: " + cublas_lt.error());
  bool no_symbol = false;
  try {
    cublas_lt.address("cublasLtNoSuchFunction");
  } catch (const Fail& e) {
    no_symbol = contains(e.what(), "cublasLtNoSuchFunction");
  }
  expect(no_symbol, "a function the library lacks is named");
}

// Device memory from cudaMalloc, for the backend's workspaces.
class PlainDeviceMemory final : public Allocator {
 public:
  const char* name() const override { return "cudaMalloc"; }
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
    return p;
  }
  void release(void* ptr, size_t) override { check(cudaFree(ptr), "cudaFree"); }
  bool on_host() const override { return false; }
};

// The elements a description reads or writes of each matrix, from its first.
int64_t extent(int64_t batch, int64_t stride, int64_t rows, int64_t ld) {
  return batch == 0 || rows == 0 ? 0 : (batch - 1) * stride + rows * ld;
}

std::vector<unsigned char> random_bytes(DType dtype, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<unsigned char> bytes(static_cast<size_t>(count) * dtype_size(dtype));
  dispatch_device_float(dtype, "random_bytes", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = reinterpret_cast<T*>(bytes.data());
    for (int64_t i = 0; i < count; ++i) p[i] = narrow<T>(u(rng));
  });
  return bytes;
}

double value(DType dtype, const std::vector<unsigned char>& bytes, int64_t i) {
  return dispatch_device_float(dtype, "value", [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    return static_cast<double>(widen(reinterpret_cast<const T*>(bytes.data())[i]));
  });
}

// One element of padding before each matrix when `misalign`, so no pointer is 16-byte aligned.
void run_desc(const std::string& what, const GemmDesc& d, double tol, bool misalign = false) {
  const int64_t pad = misalign ? 1 : 0;
  const int64_t na = pad + extent(d.batch, d.stride_a, d.trans_a ? d.k : d.m, d.lda);
  const int64_t nb = pad + extent(d.batch, d.stride_b, d.trans_b ? d.n : d.k, d.ldb);
  const int64_t nc = pad + extent(d.batch, d.stride_c, d.m, d.ldc);
  const auto a = random_bytes(d.a_type, na, 1), b = random_bytes(d.b_type, nb, 2);
  const auto c0 = random_bytes(d.c_type, nc, 3), bias = random_bytes(d.c_type, pad + d.n, 4);
  std::vector<unsigned char> want = c0, got(c0.size());
  const size_t sa = dtype_size(d.a_type), sb = dtype_size(d.b_type), sc = dtype_size(d.c_type);
  test_util::HostBackend().gemm(d, a.data() + pad * sa, b.data() + pad * sb, want.data() + pad * sc,
                                d.bias ? bias.data() + pad * sc : nullptr);

  PlainDeviceMemory memory;
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  auto upload = [&](const std::vector<unsigned char>& host) {
    void* p = memory.allocate(host.size());
    check(cudaMemcpy(p, host.data(), host.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
    return static_cast<unsigned char*>(p);
  };
  unsigned char *da = upload(a), *db = upload(b), *dbias = upload(bias);
  double worst = 0;
  bool ok = true;
  for (int turn = 0; turn < 2; ++turn) {
    unsigned char* dc = upload(c0);
    gemm_on_device(device, stream, memory, d, da + pad * sa, db + pad * sb, dc + pad * sc,
                   d.bias ? dbias + pad * sc : nullptr);
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    check(cudaMemcpy(got.data(), dc, got.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    memory.release(dc, 0);
    for (int64_t i = 0; i < nc; ++i) {
      const double x = value(d.c_type, got, i), y = value(d.c_type, want, i);
      worst = std::max(worst, std::fabs(x - y));
      ok = ok && std::fabs(x - y) <= tol * (1 + std::fabs(y));
    }
  }
  memory.release(da, 0);
  memory.release(db, 0);
  memory.release(dbias, 0);
  check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  char note[48];
  std::snprintf(note, sizeof(note), " (max |diff| %.2g)", worst);
  expect(ok, what + note);
}

GemmDesc packed(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                int64_t batch = 1) {
  GemmDesc d;
  d.a_type = d.b_type = d.c_type = dtype;
  d.trans_a = trans_a;
  d.trans_b = trans_b;
  d.m = m;
  d.n = n;
  d.k = k;
  d.batch = batch;
  d.lda = trans_a ? m : k;
  d.ldb = trans_b ? k : n;
  d.ldc = n;
  d.stride_a = m * k;
  d.stride_b = k * n;
  d.stride_c = m * n;
  return d;
}

// Relative to 1 + |reference|: cuBLASLt sums in another order, and its GELU is its own.
double tolerance(DType dtype) {
  return dtype == DType::Double ? 1e-10 : dtype == DType::Float ? 1e-4 : 1e-2;
}

void descriptions() {
  std::printf("CudaBackend::gemm against the host reference:\n");
  for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16}) {
    const std::string t = std::string(" ") + dtype_name(dtype);
    const double tol = tolerance(dtype);
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        run_desc(std::string("67x45x33") + (ta ? " transA" : "") + (tb ? " transB" : "") + t,
                 packed(dtype, ta, tb, 67, 45, 33), tol);
      }
    }
    GemmDesc d = packed(dtype, false, true, 64, 96, 80);
    d.bias = true;
    d.alpha = 0.5;
    run_desc("bias, alpha 0.5" + t, d, tol);
    d.epilogue = Epilogue::Relu;
    run_desc("bias and relu" + t, d, tol);
    d.epilogue = Epilogue::Gelu;
    run_desc("bias and gelu (tanh)" + t, d, tol);
    d.bias = false;
    run_desc("gelu alone" + t, d, tol);
    d = packed(dtype, true, false, 30, 20, 10, 6);
    d.lda = 36;
    d.ldb = 24;
    d.ldc = 21;
    d.stride_a = 10 * 36 + 5;
    d.stride_b = 0;
    d.stride_c = 30 * 21 + 3;
    d.beta = 0.75;
    run_desc("batch 6, wide leading dims, B shared, beta 0.75" + t, d, tol);
    d.k = 0;
    d.bias = true;
    run_desc("K = 0: beta * C + bias" + t, d, tol);
    run_desc("misaligned pointers" + t, packed(dtype, false, false, 31, 17, 9, 3), tol, true);
  }
  GemmDesc tf32 = packed(DType::Float, false, false, 128, 128, 256);
  tf32.tf32 = true;
  // Within TF32's error of the reference's rounding (cuBLASLt may truncate instead).
  run_desc("float32 with TF32 accepted", tf32, 5e-3);
}

// Float graph inputs in0... of the given shapes into one node whose output has `out`'s shape.
std::string model_bytes(const std::string& op, const std::vector<Tensor>& inputs, const Shape& out,
                        const std::function<void(onnx::NodeProto&)>& attrs) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(18);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain("com.graft");
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name(op);
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const Shape& shape) {
    v->set_name(name);
    auto* type = v->mutable_type()->mutable_tensor_type();
    type->set_elem_type(static_cast<int>(dtype));
    for (int64_t d : shape) type->mutable_shape()->add_dim()->set_dim_value(d);
  };
  auto* n = g->add_node();
  if (op == "FusedMatMul") n->set_domain("com.graft");
  n->set_op_type(op);
  n->set_name("node");
  for (size_t i = 0; i < inputs.size(); ++i) {
    declare(g->add_input(), "in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape());
    n->add_input("in" + std::to_string(i));
  }
  n->add_output("out0");
  declare(g->add_output(), "out0", inputs[0].dtype(), out);
  if (attrs) attrs(*n);
  return m.SerializeAsString();
}

Tensor random_tensor(DType dtype, const Shape& shape, uint64_t seed) {
  const auto bytes = random_bytes(dtype, shape_size(shape), seed);
  Tensor t(dtype, shape);
  std::copy(bytes.begin(), bytes.end(), static_cast<unsigned char*>(t.raw()));
  return t;
}

void set(onnx::NodeProto& n, const std::string& name, float value, bool integer) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(integer ? onnx::AttributeProto::INT : onnx::AttributeProto::FLOAT);
  if (integer) {
    a->set_i(static_cast<int64_t>(value));
  } else {
    a->set_f(value);
  }
}

// Runs the one-node model on the CUDA provider (with `use_tf32`) and on the CPU provider alone,
// twice, and compares: |cuda - cpu| <= tol * (1 + |cpu|).
void run_session(const std::string& what, const std::string& op, const std::vector<Tensor>& inputs,
                 const Shape& out, const std::function<void(onnx::NodeProto&)>& attrs, double tol,
                 bool use_tf32 = false) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  options.provider_options["CUDAExecutionProvider"] = {{"use_tf32", use_tf32 ? "1" : "0"}};
  const std::string bytes = model_bytes(op, inputs, out, attrs);
  InferenceSession cuda = InferenceSession::from_bytes(
      bytes, options, {"CUDAExecutionProvider", "CPUExecutionProvider"});
  InferenceSession cpu = InferenceSession::from_bytes(bytes, options, {"CPUExecutionProvider"});
  std::map<std::string, Value> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) feeds["in" + std::to_string(i)] = Value(inputs[i]);
  bool on_device = false;
  for (const auto& node : cuda.model().graph.nodes)
    on_device = on_device || node->op_type == "MemcpyFromHost";
  const Tensor want = cpu.run({}, feeds)[0].tensor();
  for (int turn = 0; turn < 2; ++turn) {
    const Tensor got = cuda.run({}, feeds)[0].tensor();
    bool ok = on_device && got.shape() == want.shape() && got.dtype() == want.dtype();
    double worst = 0;
    for (int64_t i = 0; ok && i < got.size(); ++i) {
      const auto v = [&](const Tensor& t) {
        return dispatch_float(t.dtype(), "value", [&](auto tag) {
          using T = typename decltype(tag)::type;
          return static_cast<double>(t.data<T>()[i]);
        });
      };
      const double x = v(got), y = v(want);
      worst = std::max(worst, std::fabs(x - y));
      ok = std::fabs(x - y) <= tol * (1 + std::fabs(y));
    }
    char note[48];
    std::snprintf(note, sizeof(note), " (run %d, max |diff| %.2g)", turn + 1, worst);
    expect(ok, what + note);
  }
}

void sessions() {
  std::printf("MatMul, Gemm and FusedMatMul sessions against the CPU provider:\n");
  for (DType dtype : {DType::Float, DType::Float16, DType::BFloat16}) {
    const std::string t = std::string(" ") + dtype_name(dtype);
    const double tol = dtype == DType::Float ? 1e-4 : 2e-2;
    run_session("MatMul [8, 128, 768] x [768, 3072] (rows folded)" + t, "MatMul",
                {random_tensor(dtype, {8, 128, 768}, 1), random_tensor(dtype, {768, 3072}, 2)},
                {8, 128, 3072}, nullptr, tol);
    run_session(
        "MatMul [4, 12, 128, 64] x [4, 12, 64, 128] (attention scores)" + t, "MatMul",
        {random_tensor(dtype, {4, 12, 128, 64}, 3), random_tensor(dtype, {4, 12, 64, 128}, 4)},
        {4, 12, 128, 128}, nullptr, tol);
    run_session("MatMul [3, 1, 40, 50] x [5, 50, 60] (batch looped)" + t, "MatMul",
                {random_tensor(dtype, {3, 1, 40, 50}, 5), random_tensor(dtype, {5, 50, 60}, 6)},
                {3, 5, 40, 60}, nullptr, tol);
    run_session(
        "Gemm transB [256, 512] x [1000, 512] + bias [1000]" + t, "Gemm",
        {random_tensor(dtype, {256, 512}, 7), random_tensor(dtype, {1000, 512}, 8),
         random_tensor(dtype, {1000}, 9)},
        {256, 1000}, [](onnx::NodeProto& n) { set(n, "transB", 1, true); }, tol);
    run_session(
        "Gemm transA alpha 0.5 beta 2, C [300, 1]" + t, "Gemm",
        {random_tensor(dtype, {200, 300}, 10), random_tensor(dtype, {200, 100}, 11),
         random_tensor(dtype, {300, 1}, 12)},
        {300, 100},
        [](onnx::NodeProto& n) {
          set(n, "transA", 1, true);
          set(n, "alpha", 0.5f, false);
          set(n, "beta", 2, false);
        },
        tol);
    run_session(
        "FusedMatMul transA transB, bias [96], [2, 64, 80] x [96, 64]" + t, "FusedMatMul",
        {random_tensor(dtype, {2, 64, 80}, 13), random_tensor(dtype, {96, 64}, 14),
         random_tensor(dtype, {96}, 15)},
        {2, 80, 96},
        [](onnx::NodeProto& n) {
          set(n, "transA", 1, true);
          set(n, "transB", 1, true);
        },
        tol);
  }
  run_session(
      "MatMul double [64, 70] x [70, 90]", "MatMul",
      {random_tensor(DType::Double, {64, 70}, 16), random_tensor(DType::Double, {70, 90}, 17)},
      {64, 90}, nullptr, 1e-10);
  run_session(
      "MatMul float32 with use_tf32=1 [512, 512] x [512, 512]", "MatMul",
      {random_tensor(DType::Float, {512, 512}, 18), random_tensor(DType::Float, {512, 512}, 19)},
      {512, 512}, nullptr, 2e-2, true);
}

}  // namespace
}  // namespace graft::cuda

int main() {
  try {
    graft::cuda::loader();
    std::string why;
    if (graft::cuda::device_count(&why) == 0) {
      if (graft::cuda::failures > 0) return 1;
      std::printf("skipped: %s\n", why.c_str());
      return 77;
    }
    graft::cuda::descriptions();
    graft::cuda::sessions();
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  std::printf("%d failed\n", graft::cuda::failures);
  return graft::cuda::failures == 0 ? 0 : 1;
}
