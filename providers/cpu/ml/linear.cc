#include "providers/cpu/ml/linear.h"

namespace graft::ml {

std::vector<float> linear_scores(const Tensor& x, const Rows& rows,
                                 const std::vector<double>& coefficients,
                                 const std::vector<double>& intercepts, int64_t outputs) {
  const std::vector<double> in = values_as<double>(x, "linear model");
  std::vector<float> scores(static_cast<size_t>(rows.n * outputs));
  const int64_t f = rows.features;
#pragma omp parallel for if (rows.n * outputs * f > (1 << 16))
  for (int64_t r = 0; r < rows.n; ++r) {
    for (int64_t c = 0; c < outputs; ++c) {
      double s = intercepts.empty() ? 0.0 : intercepts[static_cast<size_t>(c)];
      const double* w = coefficients.data() + c * f;
      const double* v = in.data() + r * f;
      for (int64_t k = 0; k < f; ++k) s += v[k] * w[k];
      scores[static_cast<size_t>(r * outputs + c)] = static_cast<float>(s);
    }
  }
  return scores;
}

}  // namespace graft::ml
