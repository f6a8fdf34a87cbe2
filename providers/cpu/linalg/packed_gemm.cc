#include "providers/cpu/linalg/packed_gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <type_traits>
#include <utility>

#include "exec/work_pool.h"
#include "providers/cpu/math/fast_math.h"

namespace graft::cpu {

Activation activation_attr(const KernelInfo& info) {
  if (!info.has_attr("activation")) return Activation::None;
  const std::string name = info.attr_string("activation", "");
  if (name == "Relu") return Activation::Relu;
  if (name == "Gelu") return Activation::Gelu;
  if (name == "Tanh") return Activation::Tanh;
  if (name == "Sigmoid") return Activation::Sigmoid;
  info.fail("activation must be 'Relu', 'Gelu', 'Tanh' or 'Sigmoid', got '" + name + "'");
}

namespace {

// Relu, Tanh and Sigmoid as their kernels compute them (providers/cpu/math/activation.cc), and
// Gelu in double, so a fused layer matches the unfused graph.
template <typename T>
void activate(Activation activation, T* data, int64_t count) {
  switch (activation) {
    case Activation::None:
      return;
    case Activation::Relu:
      for (int64_t i = 0; i < count; ++i) data[i] = data[i] > T(0) ? data[i] : T(0);
      return;
    case Activation::Gelu:
      for (int64_t i = 0; i < count; ++i) {
        if constexpr (std::is_same_v<T, float>)
          data[i] = fast_math::gelu(data[i]);
        else
          data[i] = T(0.5) * data[i] * (T(1) + std::erf(data[i] / std::numbers::sqrt2_v<T>));
      }
      return;
    case Activation::Tanh:
      for (int64_t i = 0; i < count; ++i) {
        if constexpr (std::is_same_v<T, float>)
          data[i] = fast_math::tanh(data[i]);
        else
          data[i] = std::tanh(data[i]);
      }
      return;
    case Activation::Sigmoid:
      for (int64_t i = 0; i < count; ++i) data[i] = T(1) / (T(1) + std::exp(-data[i]));
      return;
  }
}

}  // namespace

void apply_activation(Activation activation, float* data, int64_t count) {
  activate(activation, data, count);
}

void apply_activation(Activation activation, double* data, int64_t count) {
  activate(activation, data, count);
}

PackedB::PackedB(const Tensor& b, bool trans, float alpha)
    : k_(trans ? b.dim(1) : b.dim(0)),
      n_(trans ? b.dim(0) : b.dim(1)),
      source_(b.dtype(), b.shape(), nullptr) {
  const int64_t panels = (n_ + kPanel - 1) / kPanel;
  panels_ = Tensor::empty(DType::Float, Shape{panels * k_ * kPanel});
  const float* src = b.data<float>();
  float* dst = panels_.data<float>();
#pragma omp parallel for if (panels * k_ * kPanel > (1 << 16) && !omp_in_parallel())
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = dst + p * k_ * kPanel;
    for (int64_t kk = 0; kk < k_; ++kk) {
      for (int64_t jj = 0; jj < kPanel; ++jj) {
        const int64_t j = p * kPanel + jj;
        const float v = j >= n_ ? 0.0f : (trans ? src[j * k_ + kk] : src[kk * n_ + j]);
        panel[kk * kPanel + jj] = alpha * v;
      }
    }
  }
}

std::unique_ptr<const PackedB> pack_constant(const KernelInfo& info, int input, bool trans,
                                             float alpha) {
  const Tensor* b = info.constant_input(input);
  if (b == nullptr || b->dtype() != DType::Float || b->rank() != 2 || !b->on_host()) return nullptr;
  return std::make_unique<const PackedB>(*b, trans, alpha);
}

namespace {

constexpr int64_t kPanel = PackedB::kPanel;

// What every tile of one packed_gemm call shares.
struct Problem {
  int64_t m, lda, ldc;
  const float* a;
  const PackedB* b;
  const float* bias;
  Activation activation;
  float* c;
};

// A tile is R rows (at most kMaxRows) by one panel of C, two 8-float vectors per row, held in
// ymm accumulators while one block of K (kDepth rows of B, 16 KiB of the panel; all of K when
// C has one row group) streams through: B read straight from its panel, A broadcast one element at
// a time. The first block starts from the bias, later ones from the partial sums in C. 6 rows keep
// the 12 accumulators, B's two vectors and the broadcast within the 16 registers.
constexpr int kMaxRows = 6;
constexpr int64_t kDepth = 256;
// With 1 or 2 rows the FMAs into one accumulator would wait on each other: the K block is split
// into kChains / R interleaved sums, added up at the end.
constexpr int kChains = 4;
// Row groups a unit of work runs against each panel before the next: their rows of A (48 rows
// of a K block, 48 KiB) stay in cache while the unit's panels pass over them.
constexpr int64_t kGroupsPerBlock = 8;

// The lanes below `count` (0 to 8) of a masked load or store.
__m256i first_lanes(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int R>
void tile(const Problem& p, int64_t row, int64_t panel, int64_t k0, int64_t k1) {
  constexpr int S = R >= kChains ? 1 : kChains / R;
  const int64_t k = p.b->k(), col = panel * kPanel;
  const int64_t cols = std::min(kPanel, p.b->n() - col);
  const __m256i lanes[2] = {first_lanes(std::min<int64_t>(cols, 8)),
                            first_lanes(std::max<int64_t>(cols - 8, 0))};
  const float* a = p.a + row * p.lda;
  const float* b = p.b->data() + panel * k * kPanel;
  float* c = p.c + row * p.ldc + col;
  __m256 acc[S][R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      acc[0][r][j] = k0 > 0              ? _mm256_maskload_ps(c + r * p.ldc + 8 * j, lanes[j])
                     : p.bias != nullptr ? _mm256_maskload_ps(p.bias + col + 8 * j, lanes[j])
                                         : _mm256_setzero_ps();
#pragma GCC unroll 4
      for (int s = 1; s < S; ++s) acc[s][r][j] = _mm256_setzero_ps();
    }
  }
  auto step = [&](int s, int64_t kk) {
    const __m256 b0 = _mm256_loadu_ps(b + kk * kPanel);
    const __m256 b1 = _mm256_loadu_ps(b + kk * kPanel + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * p.lda + kk);
      acc[s][r][0] = _mm256_fmadd_ps(av, b0, acc[s][r][0]);
      acc[s][r][1] = _mm256_fmadd_ps(av, b1, acc[s][r][1]);
    }
  };
  int64_t kk = k0;
  for (; kk + S <= k1; kk += S) {
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) step(s, kk + s);
  }
  for (; kk < k1; ++kk) step(0, kk);
  const bool relu = p.activation == Activation::Relu && k1 == k;
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      __m256 v = acc[0][r][j];
#pragma GCC unroll 4
      for (int s = 1; s < S; ++s) v = _mm256_add_ps(v, acc[s][r][j]);
      if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
      if (cols >= 8 * (j + 1))
        _mm256_storeu_ps(c + r * p.ldc + 8 * j, v);
      else
        _mm256_maskstore_ps(c + r * p.ldc + 8 * j, lanes[j], v);
    }
  }
}

using TileFn = void (*)(const Problem&, int64_t, int64_t, int64_t, int64_t);

template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> tiles(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I) + 1>...};
}

constexpr auto kTiles = tiles(std::make_index_sequence<kMaxRows>());

// Panels of one unit of work: a unit is one block of up to kGroupsPerBlock row groups by up to
// kPanelsPerUnit panels, taken through every K block by the thread that claims it. Units are
// claimed dynamically, so a thread that loses its core to another process holds up one unit,
// not a fixed share of the product.
constexpr int64_t kPanelsPerUnit = 4;

// Products of fewer multiply-adds than this (a few microseconds of one core) run on the calling
// thread. Larger ones go to exec/work_pool.h, whose caller never waits for a worker that has not
// arrived: with OpenMP's closing barrier, a product beside another process waited a time slice
// for the second thread, so this was 16M, and an MLP of 8 x 1024 x 1024 layers ran at 2.1x
// onnxruntime's time on 2 threads. With the pool: 1M gave 0.9-1.2x at batch 8 and 1.0-1.5x at
// batch 1, where the 784 x 1024 layer stayed on one thread; 128K gave 0.86-0.94x at batch 1
// (median of 0.5 s of runs; slowdown beside a second graft process 0.70x onnxruntime's).
constexpr int64_t kMinParallelWork = int64_t{1} << 17;

}  // namespace

void packed_gemm(int64_t m, const float* a, int64_t lda, const PackedB& b, const float* bias,
                 Activation activation, float* c, int64_t ldc) {
  if (m == 0 || b.n() == 0) return;
  const Problem p{m, lda, ldc, a, &b, bias, activation, c};
  const int64_t k = b.k(), panels = (b.n() + kPanel - 1) / kPanel;
  const int64_t row_groups = (m + kMaxRows - 1) / kMaxRows;
  const int64_t row_blocks = (row_groups + kGroupsPerBlock - 1) / kGroupsPerBlock;
  const int64_t panel_units = (panels + kPanelsPerUnit - 1) / kPanelsPerUnit;
  // One row group: B is read once, front to back, with no K blocks to revisit C.
  const int64_t depth = row_groups == 1 ? std::max<int64_t>(k, 1) : kDepth;
  const int64_t units = row_blocks * panel_units;
  const auto unit_of_work = [&](int64_t unit) {
    const int64_t first_group = (unit % row_blocks) * kGroupsPerBlock;
    const int64_t last_group = std::min(row_groups, first_group + kGroupsPerBlock);
    const int64_t first_panel = (unit / row_blocks) * kPanelsPerUnit;
    const int64_t last_panel = std::min(panels, first_panel + kPanelsPerUnit);
    for (int64_t k0 = 0; k0 < std::max<int64_t>(k, 1); k0 += depth) {
      const int64_t k1 = std::min(k, k0 + depth);
      for (int64_t panel = first_panel; panel < last_panel; ++panel) {
        for (int64_t group = first_group; group < last_group; ++group) {
          const int64_t row = group * kMaxRows, rows = std::min<int64_t>(kMaxRows, m - row);
          kTiles[static_cast<size_t>(rows - 1)](p, row, panel, k0, k1);
        }
      }
    }
    if (activation == Activation::None || activation == Activation::Relu) return;
    const int64_t row = first_group * kMaxRows, rows = std::min(m, last_group * kMaxRows) - row;
    const int64_t col = first_panel * kPanel, cols = std::min(b.n(), last_panel * kPanel) - col;
    for (int64_t r = row; r < row + rows; ++r)
      apply_activation(activation, c + r * ldc + col, cols);
  };
  if (m * b.n() * k < kMinParallelWork) {
    for (int64_t unit = 0; unit < units; ++unit) unit_of_work(unit);
  } else {
    run_units(units, unit_of_work);
  }
}

}  // namespace graft::cpu
