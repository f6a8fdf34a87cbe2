// The kernel functions of SVMClassifier and SVMRegressor.
#pragma once

#include <cstdint>
#include <vector>

#include "exec/kernel.h"

namespace graft::ml {

enum class SvmKernel { kLinear, kPoly, kRbf, kSigmoid };

struct SvmKernelParams {
  SvmKernel type = SvmKernel::kLinear;
  float gamma = 0;
  float coef0 = 0;
  float degree = 0;
};

// kernel_type and kernel_params (gamma, coef0, degree); fails on an unknown kernel.
SvmKernelParams svm_kernel_attrs(const KernelInfo& info);

// out[r, j] = K(x[r], vectors[j]) for `n` rows of x and `count` vectors, both of `features`
// values. `bias` is added to the linear kernel (a model's rho in liblinear mode).
void svm_kernel_dot(const SvmKernelParams& params, const std::vector<float>& x, int64_t n,
                    const std::vector<float>& vectors, int64_t count, int64_t features, float bias,
                    std::vector<float>& out);

}  // namespace graft::ml
