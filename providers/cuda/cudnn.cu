// CudaBackend's convolution, pooling and batch normalization calls (kernels/dnn.h) through
// cuDNN's legacy API. libcudnn.so.9 is loaded on the first call (library.h), so graft runs where
// it is absent until a node needs it. One cuDNN handle per stream, never destroyed (work
// enqueued through it may outlive any owner). Each convolution geometry gets its descriptors
// and, per direction, the first algorithm of cuDNN's heuristic ranking (cudnnGet*_v7, as PyTorch
// does without benchmark mode) that needs at most kMaxWorkspace bytes, found once and kept in a
// least-recently-used cache; the workspace comes from the provider's allocator per call.
// double, and float unless the provider's use_tf32 allows TF32 (ConvDesc::tf32), convolve with
// CUDNN_FMA_MATH, so float results stay within the CPU provider's tolerance; float16 and
// bfloat16 use tensor cores and accumulate in float.
#include <cudnn.h>

#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "exec/lru_cache.h"
#include "providers/cuda/cuda_backend.cuh"
#include "providers/cuda/library.h"

namespace graft::cuda {
namespace {

struct CudnnApi {
  decltype(&cudnnCreate) create;
  decltype(&cudnnSetStream) set_stream;
  decltype(&cudnnGetErrorString) error_string;
  decltype(&cudnnCreateTensorDescriptor) create_tensor;
  decltype(&cudnnSetTensorNdDescriptor) set_tensor;
  decltype(&cudnnDestroyTensorDescriptor) destroy_tensor;
  decltype(&cudnnCreateFilterDescriptor) create_filter;
  decltype(&cudnnSetFilterNdDescriptor) set_filter;
  decltype(&cudnnDestroyFilterDescriptor) destroy_filter;
  decltype(&cudnnCreateConvolutionDescriptor) create_conv;
  decltype(&cudnnSetConvolutionNdDescriptor) set_conv;
  decltype(&cudnnSetConvolutionGroupCount) set_group_count;
  decltype(&cudnnSetConvolutionMathType) set_math_type;
  decltype(&cudnnGetConvolutionNdForwardOutputDim) output_dims;
  decltype(&cudnnDestroyConvolutionDescriptor) destroy_conv;
  decltype(&cudnnGetConvolutionForwardAlgorithm_v7) forward_algorithms;
  decltype(&cudnnGetConvolutionBackwardDataAlgorithm_v7) backward_data_algorithms;
  decltype(&cudnnGetConvolutionBackwardFilterAlgorithm_v7) backward_filter_algorithms;
  decltype(&cudnnConvolutionForward) forward;
  decltype(&cudnnConvolutionBackwardData) backward_data;
  decltype(&cudnnConvolutionBackwardFilter) backward_filter;
  decltype(&cudnnCreatePoolingDescriptor) create_pooling;
  decltype(&cudnnSetPoolingNdDescriptor) set_pooling;
  decltype(&cudnnDestroyPoolingDescriptor) destroy_pooling;
  decltype(&cudnnPoolingForward) pooling_forward;
  decltype(&cudnnDeriveBNTensorDescriptor) derive_batch_norm;
  decltype(&cudnnBatchNormalizationForwardInference) batch_norm_inference;
  decltype(&cudnnBatchNormalizationForwardTraining) batch_norm_training;
  decltype(&cudnnBatchNormalizationBackward) batch_norm_backward;
};

const CudnnApi& cudnn() {
  static const CudnnApi api = [] {
    static const Library lib("libcudnn.so.9",
                             "cuDNN (Conv, ConvTranspose, pooling, BatchNormalization)",
                             "GRAFT_CUDNN_LIBRARY");
    CudnnApi a;
    lib.bind(a.create, "cudnnCreate");
    lib.bind(a.set_stream, "cudnnSetStream");
    lib.bind(a.error_string, "cudnnGetErrorString");
    lib.bind(a.create_tensor, "cudnnCreateTensorDescriptor");
    lib.bind(a.set_tensor, "cudnnSetTensorNdDescriptor");
    lib.bind(a.destroy_tensor, "cudnnDestroyTensorDescriptor");
    lib.bind(a.create_filter, "cudnnCreateFilterDescriptor");
    lib.bind(a.set_filter, "cudnnSetFilterNdDescriptor");
    lib.bind(a.destroy_filter, "cudnnDestroyFilterDescriptor");
    lib.bind(a.create_conv, "cudnnCreateConvolutionDescriptor");
    lib.bind(a.set_conv, "cudnnSetConvolutionNdDescriptor");
    lib.bind(a.set_group_count, "cudnnSetConvolutionGroupCount");
    lib.bind(a.set_math_type, "cudnnSetConvolutionMathType");
    lib.bind(a.output_dims, "cudnnGetConvolutionNdForwardOutputDim");
    lib.bind(a.destroy_conv, "cudnnDestroyConvolutionDescriptor");
    lib.bind(a.forward_algorithms, "cudnnGetConvolutionForwardAlgorithm_v7");
    lib.bind(a.backward_data_algorithms, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    lib.bind(a.backward_filter_algorithms, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    lib.bind(a.forward, "cudnnConvolutionForward");
    lib.bind(a.backward_data, "cudnnConvolutionBackwardData");
    lib.bind(a.backward_filter, "cudnnConvolutionBackwardFilter");
    lib.bind(a.create_pooling, "cudnnCreatePoolingDescriptor");
    lib.bind(a.set_pooling, "cudnnSetPoolingNdDescriptor");
    lib.bind(a.destroy_pooling, "cudnnDestroyPoolingDescriptor");
    lib.bind(a.pooling_forward, "cudnnPoolingForward");
    lib.bind(a.derive_batch_norm, "cudnnDeriveBNTensorDescriptor");
    lib.bind(a.batch_norm_inference, "cudnnBatchNormalizationForwardInference");
    lib.bind(a.batch_norm_training, "cudnnBatchNormalizationForwardTraining");
    lib.bind(a.batch_norm_backward, "cudnnBatchNormalizationBackward");
    return a;
  }();
  return api;
}

// Throws Fail "<who>: cuDNN <call>: <status>" unless `status` is success.
void check_status(cudnnStatus_t status, const char* who, const char* call) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw Fail(std::string(who) + ": cuDNN " + call + ": " + cudnn().error_string(status));
}

// The most workspace an algorithm may ask for; IMPLICIT_GEMM-style algorithms need none.
constexpr size_t kMaxWorkspace = size_t{1} << 30;
// Convolution geometries whose plans are kept (a plan is a few descriptors and three choices).
constexpr size_t kPlanCapacity = 1024;

cudnnDataType_t data_type(DType dtype, const char* who) {
  switch (dtype) {
    case DType::Float:
      return CUDNN_DATA_FLOAT;
    case DType::Double:
      return CUDNN_DATA_DOUBLE;
    case DType::Float16:
      return CUDNN_DATA_HALF;
    case DType::BFloat16:
      return CUDNN_DATA_BFLOAT16;
    default:
      throw InvalidArgument(std::string(who) + ": cuDNN takes no " + dtype_name(dtype));
  }
}

int to_int(int64_t v, const char* who) {
  if (v < 0 || v > INT_MAX)
    throw InvalidArgument(std::string(who) + ": dimension " + std::to_string(v) +
                          " exceeds cuDNN's 32-bit sizes");
  return static_cast<int>(v);
}

// cuDNN's scaling factors: double for double data, float otherwise.
struct Scale {
  float f;
  double d;
  const void* of(DType dtype) const {
    if (dtype == DType::Double) return &d;
    return &f;
  }
};
const Scale kOne{1.0f, 1.0};
const Scale kZero{0.0f, 0.0};

// A cuDNN descriptor (a pointer type D), destroyed with the API's destroy function.
template <typename D>
using Owned = std::unique_ptr<std::remove_pointer_t<D>, cudnnStatus_t (*)(D)>;

template <typename D>
Owned<D> make_owned(cudnnStatus_t (*create)(D*), cudnnStatus_t (*destroy)(D), const char* who,
                    const char* call) {
  D raw = nullptr;
  check_status(create(&raw), who, call);
  return Owned<D>(raw, destroy);
}

// A packed row-major tensor of `dims`.
Owned<cudnnTensorDescriptor_t> tensor_desc(DType dtype, const std::vector<int64_t>& dims,
                                           const char* who) {
  auto desc =
      make_owned(cudnn().create_tensor, cudnn().destroy_tensor, who, "cudnnCreateTensorDescriptor");
  std::vector<int> d, strides(dims.size(), 1);
  for (int64_t v : dims) d.push_back(to_int(v, who));
  for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * d[i + 1];
  check_status(cudnn().set_tensor(desc.get(), data_type(dtype, who), static_cast<int>(d.size()),
                                  d.data(), strides.data()),
               who, "cudnnSetTensorNdDescriptor");
  return desc;
}

// cuDNN convolves and pools over 2 or 3 spatial dims: a 1-D problem is 2-D with a trailing 1.
int library_dims(int spatial) { return spatial < 2 ? 2 : spatial; }

std::vector<int64_t> dims_of(int64_t n, int64_t c, const int64_t* spatial, int rank) {
  std::vector<int64_t> dims = {n, c};
  dims.insert(dims.end(), spatial, spatial + library_dims(rank));
  return dims;
}

std::vector<int> ints_of(const int64_t* v, int rank, const char* who) {
  std::vector<int> out;
  for (int i = 0; i < library_dims(rank); ++i) out.push_back(to_int(v[i], who));
  return out;
}

// An algorithm and what it runs with.
struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// One convolution geometry's descriptors and, once found, its algorithm per direction.
struct ConvPlan {
  Owned<cudnnTensorDescriptor_t> x, y;
  Owned<cudnnFilterDescriptor_t> w;
  Owned<cudnnConvolutionDescriptor_t> conv;
  std::unique_ptr<Choice> forward, backward_data, backward_filter;

  explicit ConvPlan(const ConvDesc& d)
      : x(tensor_desc(d.dtype, dims_of(d.batch, d.channels, d.in, d.spatial), d.who)),
        y(tensor_desc(d.dtype, dims_of(d.batch, d.maps, d.out, d.spatial), d.who)),
        w(make_owned(cudnn().create_filter, cudnn().destroy_filter, d.who,
                     "cudnnCreateFilterDescriptor")),
        conv(make_owned(cudnn().create_conv, cudnn().destroy_conv, d.who,
                        "cudnnCreateConvolutionDescriptor")) {
    const char* who = d.who;
    const CudnnApi& api = cudnn();
    const int rank = library_dims(d.spatial);
    std::vector<int> filter = {to_int(d.maps, who), to_int(d.channels / d.groups, who)};
    for (int v : ints_of(d.kernel, d.spatial, who)) filter.push_back(v);
    check_status(api.set_filter(w.get(), data_type(d.dtype, who), CUDNN_TENSOR_NCHW, rank + 2,
                                filter.data()),
                 who, "cudnnSetFilterNdDescriptor");
    const std::vector<int> pads = ints_of(d.pad_begin, d.spatial, who);
    const std::vector<int> strides = ints_of(d.strides, d.spatial, who);
    const std::vector<int> dilations = ints_of(d.dilations, d.spatial, who);
    check_status(api.set_conv(conv.get(), rank, pads.data(), strides.data(), dilations.data(),
                              CUDNN_CROSS_CORRELATION,
                              d.dtype == DType::Double ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT),
                 who, "cudnnSetConvolutionNdDescriptor");
    check_status(api.set_group_count(conv.get(), to_int(d.groups, who)), who,
                 "cudnnSetConvolutionGroupCount");
    const cudnnMathType_t math = exact(d) ? CUDNN_FMA_MATH
                                 : d.tf32 ? CUDNN_DEFAULT_MATH
                                          : CUDNN_TENSOR_OP_MATH;
    check_status(api.set_math_type(conv.get(), math), who, "cudnnSetConvolutionMathType");
    std::vector<int> out(static_cast<size_t>(rank + 2));
    check_status(api.output_dims(conv.get(), x.get(), w.get(), rank + 2, out.data()), who,
                 "cudnnGetConvolutionNdForwardOutputDim");
    const std::vector<int64_t> want = dims_of(d.batch, d.maps, d.out, d.spatial);
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] != want[i])
        throw Fail(std::string(who) + ": cuDNN computes another output shape for this convolution");
    }
  }

  // Whether the convolution must not use tensor cores: double, and float without TF32.
  static bool exact(const ConvDesc& d) {
    return d.dtype == DType::Double || (d.dtype == DType::Float && !d.tf32);
  }
};

// The first of cuDNN's ranked results that succeeds, fits kMaxWorkspace and, where `exact`,
// computes without tensor cores.
template <typename Perf>
Choice choose(const Perf* results, int count, bool exact, const char* who, const char* call) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > kMaxWorkspace) continue;
    if (exact && r.mathType != CUDNN_FMA_MATH) continue;
    return Choice{static_cast<int>(r.algo), r.mathType, r.memory};
  }
  throw Fail(std::string(who) + ": " + call + " offers no algorithm for this convolution");
}

// What one stream's cuDNN work shares: the handle (its calls serialized) and the plans.
struct StreamContext {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
  LruCache<std::vector<int64_t>, ConvPlan> plans{kPlanCapacity};
};

// The context of `stream` (on CUDA device `device`), made on first use.
StreamContext& context_of(cudaStream_t stream, int device, const char* who) {
  static std::mutex mutex;
  static auto* contexts = new std::map<cudaStream_t, std::unique_ptr<StreamContext>>();
  std::lock_guard lock(mutex);
  auto& slot = (*contexts)[stream];
  if (!slot) {
    // The handle belongs to the device current when it is made.
    int current = 0;
    check(cudaGetDevice(&current), "cudaGetDevice");
    check(cudaSetDevice(device), "cudaSetDevice");
    auto context = std::make_unique<StreamContext>();
    const cudnnStatus_t created = cudnn().create(&context->handle);
    check(cudaSetDevice(current), "cudaSetDevice");
    check_status(created, who, "cudnnCreate");
    check_status(cudnn().set_stream(context->handle, stream), who, "cudnnSetStream");
    slot = std::move(context);
  }
  return *slot;
}

std::vector<int64_t> plan_key(const ConvDesc& d) {
  std::vector<int64_t> key = {
      static_cast<int64_t>(d.dtype), d.spatial, d.batch, d.channels, d.maps, d.groups};
  for (const int64_t* field : {d.in, d.kernel, d.out, d.strides, d.dilations, d.pad_begin})
    key.insert(key.end(), field, field + kDnnDims);
  return key;
}

enum class Direction { Forward, BackwardData, BackwardFilter };

// The plan of `d`'s geometry with its algorithm for `direction` found, and the workspace that
// algorithm needs. Called with the context's mutex held.
std::shared_ptr<ConvPlan> plan_for(StreamContext& c, const ConvDesc& d, Direction direction) {
  if (!d.symmetric())
    throw Fail(std::string(d.who) + ": cuDNN takes one pad per dim, not different begin and end");
  auto plan = c.plans.find_or_build(plan_key(d), [&] { return std::make_shared<ConvPlan>(d); });
  const CudnnApi& api = cudnn();
  const bool exact = ConvPlan::exact(d);
  const auto x = plan->x.get(), y = plan->y.get();
  const auto w = plan->w.get();
  const auto conv = plan->conv.get();
  if (direction == Direction::Forward && !plan->forward) {
    cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    const char* call = "cudnnGetConvolutionForwardAlgorithm_v7";
    check_status(api.forward_algorithms(c.handle, x, w, conv, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                        &count, results),
                 d.who, call);
    plan->forward = std::make_unique<Choice>(choose(results, count, exact, d.who, call));
  }
  if (direction == Direction::BackwardData && !plan->backward_data) {
    cudnnConvolutionBwdDataAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    const char* call = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    check_status(
        api.backward_data_algorithms(c.handle, w, y, conv, x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                     &count, results),
        d.who, call);
    plan->backward_data = std::make_unique<Choice>(choose(results, count, exact, d.who, call));
  }
  if (direction == Direction::BackwardFilter && !plan->backward_filter) {
    cudnnConvolutionBwdFilterAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    const char* call = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    check_status(
        api.backward_filter_algorithms(c.handle, x, y, conv, w,
                                       CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, results),
        d.who, call);
    plan->backward_filter = std::make_unique<Choice>(choose(results, count, exact, d.who, call));
  }
  return plan;
}

// Scratch of `bytes` from `allocator`, released in stream order after the call it serves.
struct Workspace {
  Tensor buffer;
  Workspace(size_t bytes, Allocator& allocator) {
    if (bytes > 0) buffer = Tensor::empty(DType::UInt8, {static_cast<int64_t>(bytes)}, allocator);
  }
  void* get() const { return buffer.defined() ? buffer.raw() : nullptr; }
};

}  // namespace

void CudaBackend::conv_forward(const ConvDesc& d, const void* x, const void* w, void* y) const {
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  const auto plan = plan_for(c, d, Direction::Forward);
  const Choice& choice = *plan->forward;
  check_status(cudnn().set_math_type(plan->conv.get(), choice.math), d.who,
               "cudnnSetConvolutionMathType");
  const Workspace workspace(choice.workspace, allocator_);
  check_status(
      cudnn().forward(c.handle, kOne.of(d.dtype), plan->x.get(), x, plan->w.get(), w,
                      plan->conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(choice.algo),
                      workspace.get(), choice.workspace, kZero.of(d.dtype), plan->y.get(), y),
      d.who, "cudnnConvolutionForward");
}

void CudaBackend::conv_backward_data(const ConvDesc& d, const void* w, const void* dy,
                                     void* dx) const {
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  const auto plan = plan_for(c, d, Direction::BackwardData);
  const Choice& choice = *plan->backward_data;
  check_status(cudnn().set_math_type(plan->conv.get(), choice.math), d.who,
               "cudnnSetConvolutionMathType");
  const Workspace workspace(choice.workspace, allocator_);
  check_status(cudnn().backward_data(
                   c.handle, kOne.of(d.dtype), plan->w.get(), w, plan->y.get(), dy,
                   plan->conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(choice.algo),
                   workspace.get(), choice.workspace, kZero.of(d.dtype), plan->x.get(), dx),
               d.who, "cudnnConvolutionBackwardData");
}

void CudaBackend::conv_backward_filter(const ConvDesc& d, const void* x, const void* dy,
                                       void* dw) const {
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  const auto plan = plan_for(c, d, Direction::BackwardFilter);
  const Choice& choice = *plan->backward_filter;
  check_status(cudnn().set_math_type(plan->conv.get(), choice.math), d.who,
               "cudnnSetConvolutionMathType");
  const Workspace workspace(choice.workspace, allocator_);
  check_status(cudnn().backward_filter(
                   c.handle, kOne.of(d.dtype), plan->x.get(), x, plan->y.get(), dy,
                   plan->conv.get(), static_cast<cudnnConvolutionBwdFilterAlgo_t>(choice.algo),
                   workspace.get(), choice.workspace, kZero.of(d.dtype), plan->w.get(), dw),
               d.who, "cudnnConvolutionBackwardFilter");
}

void CudaBackend::pool_forward(const PoolDesc& d, const void* x, void* y) const {
  if (!d.cudnn_ready())
    throw Fail(std::string(d.who) + ": cuDNN's pooling does not compute this window");
  const CudnnApi& api = cudnn();
  const auto xd = tensor_desc(d.dtype, dims_of(d.batch, d.channels, d.in, d.spatial), d.who);
  const auto yd = tensor_desc(d.dtype, dims_of(d.batch, d.channels, d.out, d.spatial), d.who);
  const auto pool =
      make_owned(api.create_pooling, api.destroy_pooling, d.who, "cudnnCreatePoolingDescriptor");
  const cudnnPoolingMode_t mode = d.mode == PoolMode::Max ? CUDNN_POOLING_MAX
                                  : d.mode == PoolMode::AverageIncludePad
                                      ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                      : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
  const std::vector<int> window = ints_of(d.kernel, d.spatial, d.who);
  const std::vector<int> pads = ints_of(d.pad_begin, d.spatial, d.who);
  const std::vector<int> strides = ints_of(d.strides, d.spatial, d.who);
  // NaN does not propagate: the CPU provider's maximum skips it too.
  check_status(api.set_pooling(pool.get(), mode, CUDNN_NOT_PROPAGATE_NAN, library_dims(d.spatial),
                               window.data(), pads.data(), strides.data()),
               d.who, "cudnnSetPoolingNdDescriptor");
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  check_status(api.pooling_forward(c.handle, pool.get(), kOne.of(d.dtype), xd.get(), x,
                                   kZero.of(d.dtype), yd.get(), y),
               d.who, "cudnnPoolingForward");
}

namespace {

// x as [N, C, spatial, 1] and the per-channel parameters' descriptor cuDNN derives from it.
struct BatchNormTensors {
  Owned<cudnnTensorDescriptor_t> x, params;
  explicit BatchNormTensors(const BatchNormDesc& d)
      : x(tensor_desc(d.dtype, {d.batch, d.channels, d.spatial, 1}, d.who)),
        params(make_owned(cudnn().create_tensor, cudnn().destroy_tensor, d.who,
                          "cudnnCreateTensorDescriptor")) {
    check_status(cudnn().derive_batch_norm(params.get(), x.get(), CUDNN_BATCHNORM_SPATIAL), d.who,
                 "cudnnDeriveBNTensorDescriptor");
  }
};

}  // namespace

void CudaBackend::batch_norm_inference(const BatchNormDesc& d, const void* x, const void* scale,
                                       const void* bias, const void* mean, const void* var,
                                       void* y) const {
  const BatchNormTensors t(d);
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  check_status(cudnn().batch_norm_inference(c.handle, CUDNN_BATCHNORM_SPATIAL, kOne.of(d.dtype),
                                            kZero.of(d.dtype), t.x.get(), x, t.x.get(), y,
                                            t.params.get(), scale, bias, mean, var, d.epsilon),
               d.who, "cudnnBatchNormalizationForwardInference");
}

void CudaBackend::batch_norm_training(const BatchNormDesc& d, const void* x, const void* scale,
                                      const void* bias, void* y, void* saved_mean,
                                      void* saved_inv_std) const {
  const BatchNormTensors t(d);
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  // No running statistics: cuDNN's blend the unbiased variance in (batch_norm.h blends ONNX's).
  check_status(cudnn().batch_norm_training(c.handle, CUDNN_BATCHNORM_SPATIAL, kOne.of(d.dtype),
                                           kZero.of(d.dtype), t.x.get(), x, t.x.get(), y,
                                           t.params.get(), scale, bias, 0.0, nullptr, nullptr,
                                           d.epsilon, saved_mean, saved_inv_std),
               d.who, "cudnnBatchNormalizationForwardTraining");
}

void CudaBackend::batch_norm_backward(const BatchNormDesc& d, const void* x, const void* dy,
                                      const void* scale, void* dx, void* dscale,
                                      void* dbias) const {
  const BatchNormTensors t(d);
  StreamContext& c = context_of(stream_, device_, d.who);
  std::lock_guard lock(c.mutex);
  check_status(cudnn().batch_norm_backward(
                   c.handle, CUDNN_BATCHNORM_SPATIAL, kOne.of(d.dtype), kZero.of(d.dtype),
                   kOne.of(d.dtype), kZero.of(d.dtype), t.x.get(), x, t.x.get(), dy, t.x.get(), dx,
                   t.params.get(), scale, dscale, dbias, d.epsilon, nullptr, nullptr),
               d.who, "cudnnBatchNormalizationBackward");
}

}  // namespace graft::cuda
