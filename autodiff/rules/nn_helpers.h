// Helpers shared by the gradient rules of neural-network ops (nn.cc: softmax, convolution,
// pooling; normalization.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/rule.h"

namespace graft::autodiff::rules {

using Ints = std::vector<int64_t>;
constexpr int64_t kEnd = INT64_MAX;

inline Ints range(int64_t from, int64_t to) {
  Ints r;
  for (int64_t i = from; i < to; ++i) r.push_back(i);
  return r;
}

inline Ints concat(Ints a, const Ints& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Records the gradient of input `i`, built by `make` only when it is wanted.
template <typename F>
void grad_if(RuleContext& c, int i, F&& make) {
  if (c.needs_input_grad(i)) c.set_input_grad(i, make());
}

inline std::string sum(RuleContext& c, const std::string& v, const Ints& axes, bool keepdims) {
  return c.emit1("ReduceSum", {v, c.ints_constant(axes)}, {Attr::i("keepdims", keepdims)});
}

inline int64_t rank_of(RuleContext& c, const std::string& v) {
  const int64_t r = c.static_rank(v);
  if (r < 0) c.fail("needs the rank of '" + v + "' (run shape inference)");
  return r;
}

// Dims [from, to) of the shape of `v` as an int64 1-D value (a constant when static).
inline std::string dims(RuleContext& c, const std::string& v, int64_t from, int64_t to = kEnd) {
  if (auto s = c.static_shape(v)) {
    to = std::min<int64_t>(to, static_cast<int64_t>(s->size()));
    return c.ints_constant(Ints(s->begin() + from, s->begin() + to));
  }
  return c.emit1("Slice", {c.emit1("Shape", {v}), c.ints_constant({from}), c.ints_constant({to})});
}

// The number of elements of forward value x over `axes`, as a scalar of x's type.
inline std::string count_over(RuleContext& c, const std::string& x, const Ints& axes) {
  if (auto s = c.static_shape(x)) {
    double n = 1;
    for (int64_t a : axes)
      n *= static_cast<double>(
          (*s)[static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(s->size()) : a)]);
    return c.scalar_like(n, x);
  }
  std::string d = c.emit1("Gather", {c.emit1("Shape", {x}), c.ints_constant(axes)});
  return c.emit1("CastLike", {c.emit1("ReduceProd", {d}, {Attr::i("keepdims", 0)}), x});
}

}  // namespace graft::autodiff::rules
