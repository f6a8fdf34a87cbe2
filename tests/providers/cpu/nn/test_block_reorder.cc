// graft's copies into and out of oneDNN's 16x16-blocked weight layouts, against oneDNN's own
// reorders between the same layouts.
#include <gtest/gtest.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "providers/cpu/nn/block_reorder.h"

namespace graft::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

void check(Tag tag, const memory::dims& dims) {
  SCOPED_TRACE(testing::Message() << "layout " << static_cast<int>(tag) << ", " << dims[0] << "x"
                                  << dims[1] << "x" << dims[2] << "x" << dims[3]);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc plain_desc(dims, memory::data_type::f32, Tag::abcd);
  const memory::desc blocked_desc(dims, memory::data_type::f32, tag);
  const size_t n = plain_desc.get_size() / sizeof(float);
  std::vector<float> plain(n), blocked(n), theirs(n), back(n);
  for (size_t i = 0; i < n; ++i) plain[i] = static_cast<float>(i) * 0.25f - 3.0f;

  const auto& blocking = blocked_desc.data.format_desc.blocking;
  Blocked16 layout{};
  for (int i = 0; i < 4; ++i) {
    layout.dims[i] = dims[static_cast<size_t>(i)];
    layout.strides[i] = blocking.strides[i];
  }
  memory user(plain_desc, engine, plain.data()), reference(blocked_desc, engine, theirs.data());
  dnnl::reorder(user, reference).execute(stream, user, reference);
  stream.wait();

  copy_to_blocked(layout, plain.data(), blocked.data());
  EXPECT_EQ(std::memcmp(blocked.data(), theirs.data(), n * sizeof(float)), 0);
  copy_from_blocked(layout, theirs.data(), back.data());
  EXPECT_EQ(std::memcmp(back.data(), plain.data(), n * sizeof(float)), 0);
}

TEST(BlockReorder, MatchesOneDnnOnTheForwardWeightLayout) {
  // OIhw16i16o: 3x3 (an 8x8 block and a ragged column per transpose), 1x1, 7x5 and 2x1 kernels.
  for (const memory::dims& dims :
       std::vector<memory::dims>{{64, 32, 3, 3}, {32, 48, 1, 1}, {16, 16, 7, 5}, {48, 16, 2, 1}})
    check(Tag::ABcd16b16a, dims);
}

TEST(BlockReorder, MatchesOneDnnWhenTheSecondDimensionIsOutermost) {
  // IOhw16i16o: the blocks of B come first in memory.
  for (const memory::dims& dims :
       std::vector<memory::dims>{{32, 64, 3, 3}, {16, 32, 1, 1}, {48, 16, 5, 7}})
    check(Tag::BAcd16b16a, dims);
}

}  // namespace
}  // namespace graft::cpu
