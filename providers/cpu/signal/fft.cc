#include "providers/cpu/signal/fft.h"

#include <cmath>
#include <numbers>
#include <utility>

namespace graft::signal {
namespace {

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

std::vector<Complex> make_twiddles(int64_t n, bool inverse) {
  std::vector<Complex> w(static_cast<size_t>(n / 2));
  const double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < n / 2; ++k) {
    const double angle =
        sign * 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
    w[static_cast<size_t>(k)] = {std::cos(angle), std::sin(angle)};
  }
  return w;
}

// In-place iterative radix-2 transform of n = 2^k points.
void radix2(Complex* a, int64_t n, const std::vector<Complex>& twiddles) {
  for (int64_t i = 1, j = 0; i < n; ++i) {
    int64_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (int64_t len = 2; len <= n; len <<= 1) {
    const int64_t half = len / 2, step = n / len;
    for (int64_t i = 0; i < n; i += len) {
      for (int64_t k = 0; k < half; ++k) {
        const Complex t = a[i + k + half] * twiddles[static_cast<size_t>(k * step)];
        a[i + k + half] = a[i + k] - t;
        a[i + k] += t;
      }
    }
  }
}

}  // namespace

FftPlan::FftPlan(int64_t n, bool inverse) : n_(n) {
  if (is_power_of_two(n)) {
    twiddles_ = make_twiddles(n, inverse);
    return;
  }
  padded_ = 1;
  while (padded_ < 2 * n - 1) padded_ <<= 1;
  twiddles_ = make_twiddles(padded_, false);
  const double sign = inverse ? 1.0 : -1.0;
  chirp_.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    // k^2 mod 2n keeps the angle small and exact for large k.
    const int64_t k2 = (k * k) % (2 * n);
    const double angle = sign * std::numbers::pi * static_cast<double>(k2) / static_cast<double>(n);
    chirp_[static_cast<size_t>(k)] = {std::cos(angle), std::sin(angle)};
  }
  kernel_.assign(static_cast<size_t>(padded_), Complex(0, 0));
  kernel_[0] = std::conj(chirp_[0]);
  for (int64_t k = 1; k < n; ++k) {
    kernel_[static_cast<size_t>(k)] = kernel_[static_cast<size_t>(padded_ - k)] =
        std::conj(chirp_[static_cast<size_t>(k)]);
  }
  radix2(kernel_.data(), padded_, twiddles_);
}

void FftPlan::run(Complex* data) const {
  if (padded_ == 0) {
    radix2(data, n_, twiddles_);
    return;
  }
  std::vector<Complex> a(static_cast<size_t>(padded_), Complex(0, 0));
  for (int64_t k = 0; k < n_; ++k)
    a[static_cast<size_t>(k)] = data[k] * chirp_[static_cast<size_t>(k)];
  radix2(a.data(), padded_, twiddles_);
  for (int64_t k = 0; k < padded_; ++k)
    a[static_cast<size_t>(k)] *= kernel_[static_cast<size_t>(k)];
  // The inverse transform of the product, as a forward transform of the conjugate.
  for (auto& v : a) v = std::conj(v);
  radix2(a.data(), padded_, twiddles_);
  const double scale = 1.0 / static_cast<double>(padded_);
  for (int64_t k = 0; k < n_; ++k) {
    data[k] = std::conj(a[static_cast<size_t>(k)]) * scale * chirp_[static_cast<size_t>(k)];
  }
}

}  // namespace graft::signal
