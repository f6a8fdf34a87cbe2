// HostBackend's convolution, pooling and batch normalization calls (providers/cuda/kernels/
// dnn.h) as plain loops over the descriptors. They refuse what cuDNN's calls refuse (pads whose
// begin and end differ, output dims other than the floor rule's, pooling windows cudnn_ready()
// declines), so the host tests show that the kernels hand the library only what it takes.
// Sums run in double; results are rounded to the data type once.
#include <cmath>
#include <vector>

#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

using cuda::BatchNormDesc;
using cuda::ConvDesc;
using cuda::kDnnDims;
using cuda::PoolDesc;
using cuda::PoolMode;

[[noreturn]] void refuse(const char* who, const std::string& why) {
  throw Fail(std::string(who) + ": the library refuses " + why);
}

void check_conv(const ConvDesc& d) {
  if (d.spatial < 1 || d.spatial > kDnnDims) refuse(d.who, "the spatial rank");
  if (d.groups <= 0 || d.channels % d.groups != 0 || d.maps % d.groups != 0)
    refuse(d.who, "the groups");
  for (int i = 0; i < kDnnDims; ++i) {
    if (d.pad_begin[i] != d.pad_end[i] || d.pad_begin[i] < 0)
      refuse(d.who, "different begin and end pads");
    if (d.out[i] != cuda::conv_output_dim(d.in[i], d.kernel[i], d.strides[i], d.dilations[i],
                                          d.pad_begin[i], d.pad_end[i]))
      refuse(d.who, "output dims other than the pads, strides and dilations give");
  }
}

// Calls f(x index, w index, y index) for every output element and kernel tap that reads inside
// x.
template <typename F>
void for_each_tap(const ConvDesc& d, F&& f) {
  const int64_t cg = d.channels / d.groups, kg = d.maps / d.groups;
  const int64_t out_size = d.out[0] * d.out[1] * d.out[2];
  const int64_t taps = d.kernel[0] * d.kernel[1] * d.kernel[2];
  for (int64_t n = 0; n < d.batch; ++n) {
    for (int64_t k = 0; k < d.maps; ++k) {
      const int64_t first_channel = k / kg * cg;
      for (int64_t o = 0; o < out_size; ++o) {
        const int64_t o0 = o / (d.out[1] * d.out[2]), o1 = o / d.out[2] % d.out[1];
        const int64_t o2 = o % d.out[2];
        for (int64_t c = 0; c < cg; ++c) {
          for (int64_t t = 0; t < taps; ++t) {
            const int64_t t0 = t / (d.kernel[1] * d.kernel[2]), t1 = t / d.kernel[2] % d.kernel[1];
            const int64_t t2 = t % d.kernel[2];
            const int64_t p0 = o0 * d.strides[0] - d.pad_begin[0] + t0 * d.dilations[0];
            const int64_t p1 = o1 * d.strides[1] - d.pad_begin[1] + t1 * d.dilations[1];
            const int64_t p2 = o2 * d.strides[2] - d.pad_begin[2] + t2 * d.dilations[2];
            if (p0 < 0 || p0 >= d.in[0] || p1 < 0 || p1 >= d.in[1] || p2 < 0 || p2 >= d.in[2])
              continue;
            f(((n * d.channels + first_channel + c) * d.in[0] + p0) * d.in[1] * d.in[2] +
                  p1 * d.in[2] + p2,
              (k * cg + c) * taps + t, (n * d.maps + k) * out_size + o);
          }
        }
      }
    }
  }
}

// Runs f with the element type of `dtype`.
template <typename F>
void with_type(DType dtype, const char* who, F&& f) {
  cuda::dispatch_device_float(dtype, who, std::forward<F>(f));
}

template <typename T>
void store(const std::vector<double>& sums, void* out) {
  T* o = static_cast<T*>(out);
  for (size_t i = 0; i < sums.size(); ++i) o[i] = cuda::narrow<T>(sums[i]);
}

template <typename T>
double at(const void* p, int64_t i) {
  return static_cast<double>(cuda::widen(static_cast<const T*>(p)[i]));
}

}  // namespace

void HostBackend::conv_forward(const ConvDesc& d, const void* x, const void* w, void* y) const {
  check_conv(d);
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<double> sums(static_cast<size_t>(shape_size(d.y_shape())), 0.0);
    for_each_tap(d, [&](int64_t xi, int64_t wi, int64_t yi) {
      sums[static_cast<size_t>(yi)] += at<T>(x, xi) * at<T>(w, wi);
    });
    store<T>(sums, y);
  });
}

void HostBackend::conv_backward_data(const ConvDesc& d, const void* w, const void* dy,
                                     void* dx) const {
  check_conv(d);
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<double> sums(static_cast<size_t>(shape_size(d.x_shape())), 0.0);
    for_each_tap(d, [&](int64_t xi, int64_t wi, int64_t yi) {
      sums[static_cast<size_t>(xi)] += at<T>(w, wi) * at<T>(dy, yi);
    });
    store<T>(sums, dx);
  });
}

void HostBackend::conv_backward_filter(const ConvDesc& d, const void* x, const void* dy,
                                       void* dw) const {
  check_conv(d);
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<double> sums(static_cast<size_t>(shape_size(d.w_shape())), 0.0);
    for_each_tap(d, [&](int64_t xi, int64_t wi, int64_t yi) {
      sums[static_cast<size_t>(wi)] += at<T>(x, xi) * at<T>(dy, yi);
    });
    store<T>(sums, dw);
  });
}

// Every window lies inside the padded input (cudnn_ready), so AverageIncludePad divides by the
// kernel size; a maximum skips NaN, as cuDNN's CUDNN_NOT_PROPAGATE_NAN does.
void HostBackend::pool_forward(const PoolDesc& d, const void* x, void* y) const {
  if (d.spatial < 1 || d.spatial > kDnnDims || !d.cudnn_ready())
    refuse(d.who, "this pooling window");
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_size = d.in_size(), out_size = d.out_size();
    std::vector<double> result(static_cast<size_t>(d.batch * d.channels * out_size));
    for (int64_t plane = 0; plane < d.batch * d.channels; ++plane) {
      for (int64_t o = 0; o < out_size; ++o) {
        const int64_t o_at[kDnnDims] = {o / (d.out[1] * d.out[2]), o / d.out[2] % d.out[1],
                                        o % d.out[2]};
        double acc = d.mode == PoolMode::Max ? -INFINITY : 0.0;
        int64_t inside = 0;
        for (int64_t t0 = 0; t0 < d.kernel[0]; ++t0) {
          for (int64_t t1 = 0; t1 < d.kernel[1]; ++t1) {
            for (int64_t t2 = 0; t2 < d.kernel[2]; ++t2) {
              const int64_t t_at[kDnnDims] = {t0, t1, t2};
              int64_t offset = 0;
              bool ok = true;
              for (int k = 0; k < kDnnDims; ++k) {
                const int64_t p = o_at[k] * d.strides[k] - d.pad_begin[k] + t_at[k];
                ok = ok && p >= 0 && p < d.in[k];
                offset = offset * d.in[k] + p;
              }
              if (!ok) continue;
              const double v = at<T>(x, plane * in_size + offset);
              ++inside;
              if (d.mode != PoolMode::Max)
                acc += v;
              else if (v > acc)
                acc = v;
            }
          }
        }
        const double taps = static_cast<double>(d.kernel[0] * d.kernel[1] * d.kernel[2]);
        if (d.mode == PoolMode::AverageIncludePad) acc /= taps;
        if (d.mode == PoolMode::AverageExcludePad) acc /= static_cast<double>(inside);
        result[static_cast<size_t>(plane * out_size + o)] = acc;
      }
    }
    store<T>(result, y);
  });
}

namespace {

// Per channel: the batch mean and 1 / sqrt(biased variance + epsilon) of x.
template <typename T>
void batch_statistics(const BatchNormDesc& d, const void* x, std::vector<double>& mean,
                      std::vector<double>& inv_std) {
  const double count = static_cast<double>(d.batch * d.spatial);
  mean.assign(static_cast<size_t>(d.channels), 0.0);
  inv_std.assign(static_cast<size_t>(d.channels), 0.0);
  for (int64_t c = 0; c < d.channels; ++c) {
    double sum = 0, squares = 0;
    for (int64_t n = 0; n < d.batch; ++n)
      for (int64_t s = 0; s < d.spatial; ++s) sum += at<T>(x, (n * d.channels + c) * d.spatial + s);
    const double m = sum / count;
    for (int64_t n = 0; n < d.batch; ++n) {
      for (int64_t s = 0; s < d.spatial; ++s) {
        const double v = at<T>(x, (n * d.channels + c) * d.spatial + s) - m;
        squares += v * v;
      }
    }
    mean[static_cast<size_t>(c)] = m;
    inv_std[static_cast<size_t>(c)] = 1.0 / std::sqrt(squares / count + d.epsilon);
  }
}

void check_batch_norm(const BatchNormDesc& d) {
  if (d.param_dtype != cuda::batch_norm_param_dtype(d.dtype))
    refuse(d.who, std::string("parameters of type ") + dtype_name(d.param_dtype) + " for " +
                      dtype_name(d.dtype) + " data");
}

// y = (x - mean) * inv_std * scale + bias per channel.
template <typename T, typename P>
void normalize(const BatchNormDesc& d, const void* x, const std::vector<double>& mean,
               const std::vector<double>& inv_std, const void* scale, const void* bias, void* y) {
  std::vector<double> out(static_cast<size_t>(d.batch * d.channels * d.spatial));
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t c = i / static_cast<size_t>(d.spatial) % static_cast<size_t>(d.channels);
    out[i] = (at<T>(x, static_cast<int64_t>(i)) - mean[c]) * inv_std[c] *
                 at<P>(scale, static_cast<int64_t>(c)) +
             at<P>(bias, static_cast<int64_t>(c));
  }
  store<T>(out, y);
}

}  // namespace

void HostBackend::batch_norm_inference(const BatchNormDesc& d, const void* x, const void* scale,
                                       const void* bias, const void* mean, const void* var,
                                       void* y) const {
  check_batch_norm(d);
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_type(d.param_dtype, d.who, [&](auto param) {
      using P = typename decltype(param)::type;
      std::vector<double> m(static_cast<size_t>(d.channels)), inv_std(m.size());
      for (int64_t c = 0; c < d.channels; ++c) {
        m[static_cast<size_t>(c)] = at<P>(mean, c);
        inv_std[static_cast<size_t>(c)] = 1.0 / std::sqrt(at<P>(var, c) + d.epsilon);
      }
      normalize<T, P>(d, x, m, inv_std, scale, bias, y);
    });
  });
}

void HostBackend::batch_norm_training(const BatchNormDesc& d, const void* x, const void* scale,
                                      const void* bias, void* y, void* saved_mean,
                                      void* saved_inv_std) const {
  check_batch_norm(d);
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_type(d.param_dtype, d.who, [&](auto param) {
      using P = typename decltype(param)::type;
      std::vector<double> mean, inv_std;
      batch_statistics<T>(d, x, mean, inv_std);
      normalize<T, P>(d, x, mean, inv_std, scale, bias, y);
      store<P>(mean, saved_mean);
      store<P>(inv_std, saved_inv_std);
    });
  });
}

// dx = scale * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)), dscale = sum(dy * x_hat),
// dbias = sum(dy), per channel over the batch and the positions.
void HostBackend::batch_norm_backward(const BatchNormDesc& d, const void* x, const void* dy,
                                      const void* scale, void* dx, void* dscale,
                                      void* dbias) const {
  check_batch_norm(d);
  with_type(d.dtype, d.who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_type(d.param_dtype, d.who, [&](auto param) {
      using P = typename decltype(param)::type;
      std::vector<double> mean, inv_std;
      batch_statistics<T>(d, x, mean, inv_std);
      const size_t channels = static_cast<size_t>(d.channels);
      std::vector<double> sum_dy(channels, 0.0), sum_dy_x_hat(channels, 0.0);
      std::vector<double> grad(static_cast<size_t>(d.batch * d.channels * d.spatial));
      auto channel_of = [&](size_t i) { return i / static_cast<size_t>(d.spatial) % channels; };
      auto x_hat = [&](size_t i) {
        return (at<T>(x, static_cast<int64_t>(i)) - mean[channel_of(i)]) * inv_std[channel_of(i)];
      };
      for (size_t i = 0; i < grad.size(); ++i) {
        sum_dy[channel_of(i)] += at<T>(dy, static_cast<int64_t>(i));
        sum_dy_x_hat[channel_of(i)] += at<T>(dy, static_cast<int64_t>(i)) * x_hat(i);
      }
      const double count = static_cast<double>(d.batch * d.spatial);
      for (size_t i = 0; i < grad.size(); ++i) {
        const size_t c = channel_of(i);
        grad[i] = at<P>(scale, static_cast<int64_t>(c)) * inv_std[c] *
                  (at<T>(dy, static_cast<int64_t>(i)) - sum_dy[c] / count -
                   x_hat(i) * sum_dy_x_hat[c] / count);
      }
      store<T>(grad, dx);
      store<P>(sum_dy_x_hat, dscale);
      store<P>(sum_dy, dbias);
    });
  });
}

}  // namespace graft::test_util
