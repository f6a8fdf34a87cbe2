// The affine map shared by LinearClassifier and LinearRegressor: scores = X * W^T + b, computed
// in double and returned as float.
#pragma once

#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/ml/ml_common.h"

namespace graft::ml {

// `coefficients` holds `outputs` rows of `features` weights; `intercepts` is empty or holds one
// value per output. Returns [rows.n, outputs] scores.
std::vector<float> linear_scores(const Tensor& x, const Rows& rows,
                                 const std::vector<double>& coefficients,
                                 const std::vector<double>& intercepts, int64_t outputs);

}  // namespace graft::ml
