// Helpers shared by the ai.onnx.ml kernels: score post-transforms, attribute readers and the
// conversion of a feature tensor to a row-major matrix.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft::ml {

inline const std::string kMlDomain = "ai.onnx.ml";

// Type lists of the classic ai.onnx.ml numeric inputs.
inline const std::vector<DType> kMlNumericTypes = {DType::Float, DType::Double, DType::Int64,
                                                   DType::Int32};

enum class PostTransform { None, Logistic, Softmax, SoftmaxZero, Probit };

// The string attribute `name` ("NONE", "LOGISTIC", ...); fails on an unknown value.
PostTransform post_transform_attr(const KernelInfo& info,
                                  const std::string& name = "post_transform");
// TreeEnsemble (opset 5) encodes the transform as an integer: 0 NONE, 1 SOFTMAX, 2 LOGISTIC,
// 3 SOFTMAX_ZERO, 4 PROBIT.
PostTransform post_transform_from_code(const KernelInfo& info, int64_t code);

float logistic(float x);
// sqrt(2) * erfinv(2x - 1) with the approximation onnxruntime uses, so scores match it.
float probit(float x);
void softmax(std::span<float> scores);
// Softmax that leaves (near) zero scores at zero.
void softmax_zero(std::span<float> scores);
// Applies `transform` to every score of a row of two or more class scores.
void transform_scores(std::span<float> scores, PostTransform transform);

// How one raw binary score s becomes two class scores, following onnxruntime: kComplement
// pairs it as [1 - s, s] (probability-like scores), kSigned as [-s, s] (margins). LOGISTIC gives
// [logistic(-s), logistic(s)] either way; the other transforms apply to the pair.
enum class SecondClass { kComplement, kSigned };
void write_binary_scores(float score, PostTransform transform, SecondClass mode, float* out);

// A feature tensor viewed as a matrix: rank 1 is one row of F features, rank 2 is [N, F].
struct Rows {
  int64_t n = 0;
  int64_t features = 0;
};
// Fails unless `x` has rank 1 or 2.
Rows rows_of(const KernelContext& ctx, const Tensor& x);

// Every element of a numeric tensor converted to T (float or double).
template <typename T>
std::vector<T> values_as(const Tensor& x, const char* what) {
  std::vector<T> out(static_cast<size_t>(x.size()));
  dispatch_number(x.dtype(), what, [&](auto tag) {
    using S = typename decltype(tag)::type;
    const S* p = x.data<S>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(static_cast<double>(p[i]));
  });
  return out;
}

// The tensor attribute `name` as doubles; empty when absent.
std::vector<double> tensor_attr_doubles(const KernelInfo& info, const std::string& name);
// `name_as_tensor` when present, else the float list `name`, as doubles (TreeEnsemble* opset 3).
std::vector<double> floats_or_tensor(const KernelInfo& info, const std::string& name);

}  // namespace graft::ml
