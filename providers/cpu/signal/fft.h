// Discrete Fourier transforms of any length in double precision: radix-2 for powers of two,
// Bluestein's chirp-z algorithm (through a power-of-two transform) otherwise.
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

namespace graft::signal {

using Complex = std::complex<double>;

// One transform length and direction. Build once, run on many rows; run() is thread safe.
class FftPlan {
 public:
  // n >= 1. `inverse` flips the exponent's sign; neither direction normalizes.
  FftPlan(int64_t n, bool inverse);
  // data[k] <- sum_t data[t] * exp(-+2 pi i k t / n), in place over n points.
  void run(Complex* data) const;
  int64_t size() const { return n_; }

 private:
  int64_t n_;
  // Power-of-two lengths: twiddles for the radix-2 passes.
  std::vector<Complex> twiddles_;
  // Other lengths: the chirp, the transformed convolution kernel and its padded length.
  std::vector<Complex> chirp_;
  std::vector<Complex> kernel_;
  int64_t padded_ = 0;
};

}  // namespace graft::signal
