// The least-recently-used cache behind graft's oneDNN primitives, on its own and under a Conv fed
// more geometries than the cache holds (checked against a direct convolution).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/error.h"
#include "exec/session.h"
#include "providers/cpu/nn/dnnl_conv.h"
#include "providers/cpu/nn/primitive_cache.h"
#include "tests/model_builder.h"

namespace graft::cpu {
namespace {

using Cache = LruCache<std::string, int>;

void insert(Cache& cache, const std::string& key, int value) {
  cache.insert(key, std::make_shared<int>(value));
}

TEST(PrimitiveCache, InsertingPastTheCapacityEvictsTheLeastRecentlyUsed) {
  Cache cache(2);
  insert(cache, "a", 1);
  insert(cache, "b", 2);
  insert(cache, "c", 3);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("a"), nullptr);
  ASSERT_NE(cache.find("b"), nullptr);
  EXPECT_EQ(*cache.find("c"), 3);
  insert(cache, "d", 4);
  EXPECT_EQ(cache.find("b"), nullptr);
}

TEST(PrimitiveCache, AHitMakesTheEntryTheMostRecentlyUsed) {
  Cache cache(2);
  insert(cache, "a", 1);
  insert(cache, "b", 2);
  ASSERT_NE(cache.find("a"), nullptr);
  insert(cache, "c", 3);
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_NE(cache.find("c"), nullptr);
}

TEST(PrimitiveCache, ShrinkingTheCapacityKeepsTheMostRecentlyUsed) {
  Cache cache(4);
  for (int i = 0; i < 4; ++i) insert(cache, std::string(1, static_cast<char>('a' + i)), i);
  ASSERT_NE(cache.find("a"), nullptr);
  cache.set_capacity(2);
  EXPECT_EQ(cache.capacity(), 2u);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_NE(cache.find("d"), nullptr);
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_EQ(cache.find("c"), nullptr);
  cache.set_capacity(0);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(PrimitiveCache, AnEvictedValueLivesWhileItIsHeld) {
  Cache cache(1);
  insert(cache, "a", 1);
  std::shared_ptr<int> held = cache.find("a");
  std::weak_ptr<int> watch = held;
  insert(cache, "b", 2);
  EXPECT_EQ(cache.find("a"), nullptr);
  EXPECT_EQ(*held, 1);
  held.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(PrimitiveCache, FindOrBuildBuildsEachKeyOnceAndStoresNothingOnFailure) {
  Cache cache(2);
  int builds = 0;
  auto build = [&] { return std::make_shared<int>(++builds); };
  EXPECT_EQ(*cache.find_or_build("a", build), 1);
  EXPECT_EQ(*cache.find_or_build("a", build), 1);
  EXPECT_EQ(builds, 1);
  EXPECT_THROW(
      cache.find_or_build("b", []() -> std::shared_ptr<int> { throw std::runtime_error("no"); }),
      std::runtime_error);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find("b"), nullptr);
}

TEST(PrimitiveCache, ACapacityOfZeroKeepsNothing) {
  Cache cache(0);
  int builds = 0;
  auto build = [&] { return std::make_shared<int>(++builds); };
  EXPECT_EQ(*cache.find_or_build("a", build), 1);
  EXPECT_EQ(*cache.find_or_build("a", build), 2);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(PrimitiveCache, ParsesTheCapacityVariable) {
  EXPECT_EQ(parse_primitive_cache_capacity("0"), 0u);
  EXPECT_EQ(parse_primitive_cache_capacity("1024"), 1024u);
  for (const std::string bad : {"", "abc", "-1", "12x", " 5", "1.5", "99999999999999999999999"}) {
    SCOPED_TRACE("value '" + bad + "'");
    try {
      parse_primitive_cache_capacity(bad);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("GRAFT_DNNL_CACHE_CAPACITY"), std::string::npos)
          << e.what();
    }
  }
}

// Sets the process's primitive cache capacity for one test.
class CapacityOverride {
 public:
  explicit CapacityOverride(std::size_t capacity) : saved_(primitive_cache_capacity()) {
    set_primitive_cache_capacity(capacity);
  }
  ~CapacityOverride() { set_primitive_cache_capacity(saved_); }

 private:
  std::size_t saved_;
};

TEST(PrimitiveCache, TheCapacityCanBeSetAndRead) {
  CapacityOverride capacity(7);
  EXPECT_EQ(primitive_cache_capacity(), 7u);
  set_primitive_cache_capacity(0);
  EXPECT_EQ(primitive_cache_capacity(), 0u);
}

constexpr int64_t kChannels = 3, kMaps = 4, kKernel = 3, kStride = 2, kPad = 1;

float weight(int64_t i) { return static_cast<float>((i * 7) % 11 - 5) * 0.1f; }
float bias(int64_t i) { return static_cast<float>(i) * 0.25f - 0.5f; }

// y = Conv(x, W, B) with 3x3 kernels, stride 2 and one pixel of padding on every side; x is
// [N, 3, H, W] with N, H and W free.
ir::Model conv_model() {
  test_util::ModelBuilder m("conv");
  m.input("x", std::vector<std::string>{"N", "3", "H", "W"});
  m.initializer("w", {kMaps, kChannels, kKernel, kKernel}, weight);
  m.initializer("b", {kMaps}, bias);
  auto* conv = m.node("Conv", {"x", "w", "b"}, "y");
  auto ints = [&](const std::string& name, const std::vector<int64_t>& values) {
    auto* a = conv->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  };
  ints("pads", {kPad, kPad, kPad, kPad});
  ints("strides", {kStride, kStride});
  m.output("y", std::vector<std::string>{"N", "4", "OH", "OW"});
  return m.build();
}

// The convolution conv_model computes, one output at a time in double.
std::vector<double> reference_conv(const Tensor& x) {
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
  const int64_t oh = (h + 2 * kPad - kKernel) / kStride + 1;
  const int64_t ow = (w + 2 * kPad - kKernel) / kStride + 1;
  const float* xs = x.data<float>();
  std::vector<double> y;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t m = 0; m < kMaps; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double sum = bias(m);
          for (int64_t c = 0; c < kChannels; ++c)
            for (int64_t ki = 0; ki < kKernel; ++ki)
              for (int64_t kj = 0; kj < kKernel; ++kj) {
                const int64_t r = i * kStride - kPad + ki, s = j * kStride - kPad + kj;
                if (r < 0 || r >= h || s < 0 || s >= w) continue;
                sum += static_cast<double>(xs[((b * kChannels + c) * h + r) * w + s]) *
                       weight(((m * kChannels + c) * kKernel + ki) * kKernel + kj);
              }
          y.push_back(sum);
        }
  return y;
}

void run_and_check(InferenceSession& session, int64_t n, int64_t h, int64_t w, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "x of " << n << "x3x" << h << "x" << w);
  Tensor x(DType::Float, {n, kChannels, h, w});
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = uniform(rng);
  const Tensor y = session.run({}, {{"x", x}})[0].tensor();
  const std::vector<double> want = reference_conv(x);
  ASSERT_EQ(y.size(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(y.data<float>()[i], want[i], 1e-4) << i;
}

TEST(PrimitiveCache, ConvOnMoreGeometriesThanTheCapacityStaysWithinIt) {
  constexpr std::size_t kCapacity = 3;
  CapacityOverride capacity(kCapacity);
  // Below the layout level Conv runs through dnnl_conv_forward and its shared cache.
  SessionOptions options;
  options.graph_optimization_level = 2;
  InferenceSession session(conv_model(), options);
  std::mt19937 rng(20240611);
  struct Geometry {
    int64_t n, h, w;
  };
  std::vector<Geometry> geometries;
  for (int64_t k = 0; k < 8; ++k) geometries.push_back({1 + k % 2, 5 + k, 4 + 2 * k});
  for (const Geometry& g : geometries) {
    run_and_check(session, g.n, g.h, g.w, rng);
    EXPECT_LE(dnnl_conv_cached_primitives(), kCapacity);
  }
  // Every geometry left one forward primitive: the cache is full of the latest three.
  EXPECT_EQ(dnnl_conv_cached_primitives(), kCapacity);
  // The first geometry's primitive was evicted; it is built again and still right.
  run_and_check(session, geometries[0].n, geometries[0].h, geometries[0].w, rng);
  EXPECT_EQ(dnnl_conv_cached_primitives(), kCapacity);

  set_primitive_cache_capacity(1);
  EXPECT_EQ(dnnl_conv_cached_primitives(), 1u);
  run_and_check(session, geometries[5].n, geometries[5].h, geometries[5].w, rng);
  EXPECT_EQ(dnnl_conv_cached_primitives(), 1u);
}

}  // namespace
}  // namespace graft::cpu
