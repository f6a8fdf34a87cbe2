// The CUDA provider's Dropout (providers/cuda/kernels/dropout.h), compiled for the host. Its
// generator is Philox4x32-10, checked against Random123's known answers; the CPU provider draws
// from another generator, so the kernel is held to the contract instead of the CPU's values:
// Y = X * mask / (1 - ratio) exactly, a kept fraction within binomial error of 1 - ratio, the same
// mask for the same seed, and the identity in inference mode or with ratio 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/dropout.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_dropout<HostBackend>);

// Random123's kat_vectors for philox4x32 with 10 rounds: counter, key, the four words.
TEST(CudaHostDropout, PhiloxMatchesRandom123KnownAnswers) {
  struct Case {
    uint32_t counter[4], key[2], expected[4];
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Case& c : cases) {
    const cuda::Philox4x32 r = cuda::philox4x32_10(
        {{c.counter[0], c.counter[1], c.counter[2], c.counter[3]}}, c.key[0], c.key[1]);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(r.word[j], c.expected[j]) << "word " << j;
  }
}

// Dropout(x, ratio, training_mode) -> (y, mask) at opset 13.
ir::Model dropout_model(DType dtype, const Shape& shape, double ratio, bool training,
                        std::optional<int64_t> seed) {
  return op_model({"Dropout",
                   {random_tensor(dtype, shape), tensor_of(DType::Float, {}, {ratio}),
                    tensor_of(DType::Bool, {}, {training ? 1.0 : 0.0})},
                   2,
                   13,
                   [&](onnx::NodeProto& n) {
                     if (seed) set_attr(n, "seed", *seed);
                   },
                   {1, 2}});
}

struct Dropped {
  Tensor y;
  Tensor mask;
};

Dropped run_dropout(InferenceSession& session, const Tensor& x) {
  std::vector<Value> out = session.run({}, {{"in0", Value(x)}});
  return {out[0].tensor(), out[1].tensor()};
}

InferenceSession device_session(ir::Model model) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  return InferenceSession(std::move(model), options, {device_provider(), "CPUExecutionProvider"});
}

// x * (1 / (1 - ratio)), the scale rounded to the compute type, for kept elements; else 0. The
// ratio is the float the model holds.
double expected(DType dtype, double x, bool kept, double ratio) {
  if (!kept) return 0.0;
  const double scale = 1.0 / (1.0 - static_cast<float>(ratio));
  switch (dtype) {
    case DType::Double:
      return x * scale;
    case DType::Float:
      return static_cast<float>(x) * static_cast<float>(scale);
    case DType::Float16:
      return static_cast<float>(Float16(static_cast<float>(x) * static_cast<float>(scale)));
    default:
      return static_cast<float>(BFloat16(static_cast<float>(x) * static_cast<float>(scale)));
  }
}

double element(const Tensor& t, int64_t i) { return t.scalar_as_double(i); }

TEST(CudaHostDropout, OutputIsInputTimesMaskOverKeptFraction) {
  for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16}) {
    for (double ratio : {0.5, 0.3, 0.9}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " ratio " + std::to_string(ratio));
      const Shape shape = {40, 1001};
      InferenceSession session = device_session(dropout_model(dtype, shape, ratio, true, 5));
      const Tensor x = random_tensor(dtype, shape, -4, 4, 3);
      const Dropped d = run_dropout(session, x);
      ASSERT_EQ(d.mask.dtype(), DType::Bool);
      int64_t kept = 0, wrong = 0;
      for (int64_t i = 0; i < x.size(); ++i) {
        const bool k = d.mask.data<bool>()[i];
        kept += k;
        if (element(d.y, i) != expected(dtype, element(x, i), k, ratio) && wrong++ < 5)
          ADD_FAILURE() << "y[" << i << "] = " << element(d.y, i) << ", x = " << element(x, i);
      }
      // Within five standard deviations of the binomial count.
      const double n = static_cast<double>(x.size()), p = 1.0 - ratio;
      EXPECT_NEAR(static_cast<double>(kept), n * p, 5.0 * std::sqrt(n * p * (1.0 - p)));
    }
  }
}

TEST(CudaHostDropout, SeededMaskIsThePhiloxStreamAtOffsetZero) {
  const Shape shape = {1003};
  const double ratio = 0.25;
  const int64_t seed = 0x123456789aLL;
  InferenceSession session = device_session(dropout_model(DType::Float, shape, ratio, true, seed));
  const Dropped d = run_dropout(session, random_tensor(DType::Float, shape));
  const auto s = static_cast<uint64_t>(seed);
  for (int64_t i = 0; i < d.mask.size(); ++i) {
    const cuda::Philox4x32 r =
        cuda::philox4x32_10({{static_cast<uint32_t>(i / 4), 0, 0, 0}}, static_cast<uint32_t>(s),
                            static_cast<uint32_t>(s >> 32));
    const bool keep = (r.word[i % 4] >> 8) >= static_cast<uint32_t>(ratio * 16777216.0);
    ASSERT_EQ(d.mask.data<bool>()[i], keep) << "element " << i;
  }
}

bool same_mask(const Tensor& a, const Tensor& b) {
  return std::equal(a.data<bool>(), a.data<bool>() + a.size(), b.data<bool>());
}

TEST(CudaHostDropout, SameSeedSameMaskAndUnseededRunsDiffer) {
  const Shape shape = {4096};
  const Tensor x = random_tensor(DType::Float, shape, 1, 2);
  InferenceSession seeded = device_session(dropout_model(DType::Float, shape, 0.5, true, 42));
  InferenceSession again = device_session(dropout_model(DType::Float, shape, 0.5, true, 42));
  InferenceSession other = device_session(dropout_model(DType::Float, shape, 0.5, true, 43));
  const Dropped first = run_dropout(seeded, x);
  EXPECT_TRUE(same_mask(first.mask, run_dropout(seeded, x).mask));
  EXPECT_TRUE(same_mask(first.mask, run_dropout(again, x).mask));
  EXPECT_FALSE(same_mask(first.mask, run_dropout(other, x).mask));

  InferenceSession unseeded =
      device_session(dropout_model(DType::Float, shape, 0.5, true, std::nullopt));
  const Dropped a = run_dropout(unseeded, x);
  const Dropped b = run_dropout(unseeded, x);
  EXPECT_FALSE(same_mask(a.mask, b.mask));
}

TEST(CudaHostDropout, InferenceModeAndRatioZeroAreIdentity) {
  for (DType dtype : {DType::Float, DType::Float16}) {
    const Shape shape = {7, 9};
    for (auto [ratio, training] : {std::pair{0.5, false}, std::pair{0.0, true}}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " ratio " + std::to_string(ratio));
      // Matches the CPU provider's Dropout, which is the identity here too.
      expect_matches_cpu(dropout_model(dtype, shape, ratio, training, std::nullopt),
                         {{"in0", Value(random_tensor(dtype, shape, -2, 2, 9))}});
      InferenceSession session =
          device_session(dropout_model(dtype, shape, ratio, training, std::nullopt));
      const Tensor x = random_tensor(dtype, shape, -2, 2, 9);
      const Dropped d = run_dropout(session, x);
      for (int64_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(element(d.y, i), element(x, i));
        ASSERT_TRUE(d.mask.data<bool>()[i]);
      }
    }
  }
}

TEST(CudaHostDropout, RatioOneDropsEverythingAndOutOfRangeFails) {
  const Shape shape = {33};
  InferenceSession all = device_session(dropout_model(DType::Float, shape, 1.0, true, 1));
  const Dropped d = run_dropout(all, random_tensor(DType::Float, shape, 1, 2));
  for (int64_t i = 0; i < d.y.size(); ++i) {
    ASSERT_EQ(d.y.data<float>()[i], 0.0f);
    ASSERT_FALSE(d.mask.data<bool>()[i]);
  }
  InferenceSession bad = device_session(dropout_model(DType::Float, shape, 1.5, true, 1));
  try {
    run_dropout(bad, random_tensor(DType::Float, shape));
    FAIL() << "expected a failure";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("ratio must be in [0, 1]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace graft::test_util
