#include "providers/cpu/ml/svm_common.h"

#include <cmath>

namespace graft::ml {

SvmKernelParams svm_kernel_attrs(const KernelInfo& info) {
  SvmKernelParams p;
  const std::string type = info.attr_string("kernel_type", "LINEAR");
  if (type == "LINEAR") {
    p.type = SvmKernel::kLinear;
  } else if (type == "POLY") {
    p.type = SvmKernel::kPoly;
  } else if (type == "RBF") {
    p.type = SvmKernel::kRbf;
  } else if (type == "SIGMOID") {
    p.type = SvmKernel::kSigmoid;
  } else {
    info.fail("kernel_type must be LINEAR, POLY, RBF or SIGMOID, got '" + type + "'");
  }
  const std::vector<float> params = info.attr_floats("kernel_params");
  if (!params.empty()) {
    if (params.size() != 3) info.fail("kernel_params must hold gamma, coef0 and degree");
    p.gamma = params[0];
    p.coef0 = params[1];
    p.degree = params[2];
  }
  return p;
}

void svm_kernel_dot(const SvmKernelParams& params, const std::vector<float>& x, int64_t n,
                    const std::vector<float>& vectors, int64_t count, int64_t features, float bias,
                    std::vector<float>& out) {
  out.assign(static_cast<size_t>(n * count), 0.0f);
#pragma omp parallel for if (n * count * features > (1 << 16))
  for (int64_t r = 0; r < n; ++r) {
    const float* a = x.data() + r * features;
    for (int64_t j = 0; j < count; ++j) {
      const float* b = vectors.data() + j * features;
      float value;
      if (params.type == SvmKernel::kRbf) {
        float sum = 0;
        for (int64_t k = 0; k < features; ++k) {
          const float d = a[k] - b[k];
          sum += d * d;
        }
        value = std::exp(-params.gamma * sum);
      } else {
        double dot = 0;
        for (int64_t k = 0; k < features; ++k) dot += static_cast<double>(a[k]) * b[k];
        if (params.type == SvmKernel::kLinear) {
          value = static_cast<float>(dot + bias);
        } else {
          const auto s = static_cast<float>(params.gamma * dot + params.coef0);
          value = params.type == SvmKernel::kPoly ? std::pow(s, params.degree) : std::tanh(s);
        }
      }
      out[static_cast<size_t>(r * count + j)] = value;
    }
  }
}

}  // namespace graft::ml
