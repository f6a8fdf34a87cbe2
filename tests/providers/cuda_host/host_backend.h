// The CUDA provider's kernels on the host: HostBackend runs the backend calls of
// providers/cuda/kernels/backend.h as loops over host memory that reports itself as device
// memory, and "CUDAHostTestProvider" registers every kernel family instantiated for it. A session
// with providers {"CUDAHostTestProvider", "CPUExecutionProvider"} then runs a model on the same
// kernel code the device runs (only the launches differ), with the partitioner's copies at every
// boundary, and the result is compared with the CPU provider's.
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "exec/session.h"
#include "ir/model.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/blas.h"
#include "providers/cuda/kernels/dnn.h"

namespace graft::test_util {

// Host memory that says it is not host memory: nothing but a device kernel or a copy node may
// touch it, so a missing copy shows up as a kernel's "not in device memory" failure.
class HostDeviceMemory final : public Allocator {
 public:
  const char* name() const override { return "CUDAHostTest"; }
  void* allocate(size_t bytes) override;
  void release(void* ptr, size_t bytes) override;
  bool on_host() const override { return false; }
  // What a device allocator's copies do (Allocator's contract), here with memcpy.
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
};

HostDeviceMemory& host_device_memory();

class HostBackend {
 public:
  Allocator& allocator() const { return host_device_memory(); }

  // Elements in reverse order, so a kernel that depends on the order shows it.
  template <class F>
  void for_each(int64_t n, const F& f) const {
    for (int64_t i = n; i-- > 0;) f(i);
  }

  // Each row folded in four interleaved partial results, then combined, as a device block
  // groups its threads' partial results.
  template <class Op>
  void reduce_rows(int64_t rows, int64_t cols, const Op& op) const {
    for (int64_t r = 0; r < rows; ++r) {
      typename Op::Acc partial[4] = {op.identity(), op.identity(), op.identity(), op.identity()};
      for (int64_t j = 0; j < cols; ++j) partial[j % 4] = op.combine(partial[j % 4], op.load(r, j));
      op.store(r,
               op.combine(op.combine(partial[0], partial[2]), op.combine(partial[1], partial[3])));
    }
  }

  void copy(void* dst, const void* src, size_t bytes) const {
    if (bytes > 0) std::memmove(dst, src, bytes);
  }
  void fill(void* dst, int byte, size_t bytes) const {
    if (bytes > 0) std::memset(dst, byte, bytes);
  }
  // Convolution, pooling and batch normalization as reference loops (contracts in
  // providers/cuda/kernels/dnn.h; host_dnn.cc).
  void conv_forward(const cuda::ConvDesc& d, const void* x, const void* w, void* y) const;
  void conv_backward_data(const cuda::ConvDesc& d, const void* w, const void* dy, void* dx) const;
  void conv_backward_filter(const cuda::ConvDesc& d, const void* x, const void* dy, void* dw) const;
  void pool_forward(const cuda::PoolDesc& d, const void* x, void* y) const;
  void batch_norm_inference(const cuda::BatchNormDesc& d, const void* x, const void* scale,
                            const void* bias, const void* mean, const void* var, void* y) const;
  void batch_norm_training(const cuda::BatchNormDesc& d, const void* x, const void* scale,
                           const void* bias, void* y, void* saved_mean, void* saved_inv_std) const;
  void batch_norm_backward(const cuda::BatchNormDesc& d, const void* x, const void* dy,
                           const void* scale, void* dx, void* dscale, void* dbias) const;
  uint64_t next_seed() { return seed_++; }
  bool use_tf32() const { return false; }
  void gemm(const cuda::GemmDesc& desc, const void* a, const void* b, void* c,
            const void* bias = nullptr) const;  // host_blas.cc

 private:
  uint64_t seed_ = 0x5eed;
};

// The kernel families the test provider registers; each test file of a family adds its own:
//   const HostFamily family(&cuda::register_elementwise<HostBackend>);
std::vector<void (*)(KernelRegistry&)>& host_families();
struct HostFamily {
  explicit HostFamily(void (*fn)(KernelRegistry&)) { host_families().push_back(fn); }
};

// Whether a tensor lives in the test provider's memory.
bool in_host_device_memory(const Tensor& t);

// The name the test provider registers under.
inline constexpr const char* kHostTestProvider = "CUDAHostTestProvider";

// The provider that runs the device kernels: the host test provider, or the CUDA provider under
// GRAFT_TEST_DEVICE=cuda (scripts/gpu_check.sh on a GPU machine).
const char* device_provider();

// Runs `model` with the test provider first and with the CPU provider alone, and expects every
// output to agree within `rtol`/`atol` (elementwise |a - b| <= atol + rtol * |b|; bool and
// integer outputs exactly). Also expects every node of the model, but the copies the partitioner
// added, to have run on the test provider, unless its op is in `host_ops`.
void expect_matches_cpu(const ir::Model& model, const std::map<std::string, Value>& feeds,
                        double rtol = 1e-5, double atol = 1e-6,
                        const std::vector<std::string>& host_ops = {});

}  // namespace graft::test_util

namespace onnx {
class NodeProto;
}

namespace graft::test_util {

// A model of one node: `op` (domain "" unless given as "domain:op") reading `inputs` (graph
// inputs, fed per run, named "in0", "in1"...; an undefined tensor leaves that input out) and
// writing `num_outputs` outputs "out0"...; `attrs` sets the node's attributes. Opset `opset` of
// ai.onnx (and 1 of com.graft).
struct OpCase {
  std::string op;
  std::vector<Tensor> inputs;
  int num_outputs = 1;
  int64_t opset = 18;
  std::function<void(onnx::NodeProto&)> attrs = nullptr;
  // Inputs that are initializers instead of graph inputs (by index).
  std::vector<int> constant_inputs = {};
};

ir::Model op_model(const OpCase& c);
std::map<std::string, Value> op_feeds(const OpCase& c);

// Runs `c` both ways and compares (expect_matches_cpu).
void expect_op_matches_cpu(const OpCase& c, double rtol = 1e-5, double atol = 1e-6);

// A host tensor of `dtype` and `shape` with values from a fixed generator: uniform in [lo, hi)
// for floats, integers in [lo, hi) for integer types, alternating-ish for bool.
Tensor random_tensor(DType dtype, const Shape& shape, double lo = -1.0, double hi = 1.0,
                     uint64_t seed = 1);
// A host tensor holding `values` converted to `dtype`.
Tensor tensor_of(DType dtype, const Shape& shape, const std::vector<double>& values);

// Attribute setters for OpCase::attrs.
void set_attr(onnx::NodeProto& n, const std::string& name, int64_t value);
void set_attr(onnx::NodeProto& n, const std::string& name, float value);
void set_attr(onnx::NodeProto& n, const std::string& name, const std::string& value);
void set_attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values);
void set_attr(onnx::NodeProto& n, const std::string& name, const std::vector<float>& values);

}  // namespace graft::test_util
