#include "providers/cpu/ml/ml_common.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace graft::ml {

PostTransform post_transform_attr(const KernelInfo& info, const std::string& name) {
  const std::string s = info.attr_string(name, "NONE");
  if (s == "NONE") return PostTransform::None;
  if (s == "LOGISTIC") return PostTransform::Logistic;
  if (s == "SOFTMAX") return PostTransform::Softmax;
  if (s == "SOFTMAX_ZERO") return PostTransform::SoftmaxZero;
  if (s == "PROBIT") return PostTransform::Probit;
  info.fail("unknown " + name + " '" + s + "'");
}

PostTransform post_transform_from_code(const KernelInfo& info, int64_t code) {
  switch (code) {
    case 0:
      return PostTransform::None;
    case 1:
      return PostTransform::Softmax;
    case 2:
      return PostTransform::Logistic;
    case 3:
      return PostTransform::SoftmaxZero;
    case 4:
      return PostTransform::Probit;
    default:
      info.fail("unknown post_transform " + std::to_string(code));
  }
}

float logistic(float x) {
  const float v = 1.0f / (1.0f + std::exp(-std::abs(x)));
  return x < 0 ? 1.0f - v : v;
}

namespace {

float erf_inv(float x) {
  const float sgn = x < 0 ? -1.0f : 1.0f;
  x = (1 - x) * (1 + x);
  const float log = std::log(x);
  const float v = 2 / (std::numbers::pi_v<float> * 0.147f) + 0.5f * log;
  const float v2 = 1 / 0.147f * log;
  const float v3 = -v + std::sqrt(v * v - v2);
  return sgn * std::sqrt(v3);
}

}  // namespace

float probit(float x) { return std::numbers::sqrt2_v<float> * erf_inv(2 * x - 1); }

void softmax(std::span<float> scores) {
  float v_max = -std::numeric_limits<float>::max();
  for (float v : scores) v_max = std::max(v_max, v);
  float sum = 0;
  for (float& v : scores) {
    v = std::exp(v - v_max);
    sum += v;
  }
  for (float& v : scores) v /= sum;
}

void softmax_zero(std::span<float> scores) {
  float v_max = -std::numeric_limits<float>::max();
  for (float v : scores) v_max = std::max(v_max, v);
  const float exp_neg_v_max = std::exp(-v_max);
  float sum = 0;
  for (float& v : scores) {
    if (v > 0.0000001f || v < -0.0000001f) {
      v = std::exp(v - v_max);
      sum += v;
    } else {
      v *= exp_neg_v_max;
    }
  }
  for (float& v : scores) v = sum == 0 ? 0.5f : v / sum;
}

void transform_scores(std::span<float> scores, PostTransform transform) {
  switch (transform) {
    case PostTransform::None:
      break;
    case PostTransform::Logistic:
      for (float& v : scores) v = logistic(v);
      break;
    case PostTransform::Softmax:
      softmax(scores);
      break;
    case PostTransform::SoftmaxZero:
      softmax_zero(scores);
      break;
    case PostTransform::Probit:
      for (float& v : scores) v = probit(v);
      break;
  }
}

void write_binary_scores(float score, PostTransform transform, SecondClass mode, float* out) {
  if (transform == PostTransform::Logistic) {
    out[0] = logistic(-score);
    out[1] = logistic(score);
    return;
  }
  out[0] = mode == SecondClass::kComplement ? 1.0f - score : -score;
  out[1] = score;
  transform_scores({out, 2}, transform);
}

Rows rows_of(const KernelContext& ctx, const Tensor& x) {
  if (x.rank() == 1) return {1, x.dim(0)};
  if (x.rank() == 2) return {x.dim(0), x.dim(1)};
  ctx.fail("input X must have rank 1 or 2, got shape " + shape_to_string(x.shape()));
}

std::vector<double> tensor_attr_doubles(const KernelInfo& info, const std::string& name) {
  if (!info.has_attr(name)) return {};
  const Tensor t = info.attr_tensor(name);
  if (t.dtype() == DType::String || t.dtype() == DType::Bool) {
    info.fail("attribute '" + name + "' must hold numbers, got " + dtype_name(t.dtype()));
  }
  return values_as<double>(t, name.c_str());
}

std::vector<double> floats_or_tensor(const KernelInfo& info, const std::string& name) {
  if (info.has_attr(name + "_as_tensor")) return tensor_attr_doubles(info, name + "_as_tensor");
  const std::vector<float> f = info.attr_floats(name);
  return {f.begin(), f.end()};
}

}  // namespace graft::ml
