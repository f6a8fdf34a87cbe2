#include "providers/cpu/broadcast.h"

namespace graft {

namespace {

std::string prefix(const std::string& who) { return who.empty() ? "" : who + ": "; }

}  // namespace

BroadcastPlan::BroadcastPlan(const std::vector<Shape>& inputs, const Shape& output,
                             const std::string& who)
    : output_(output) {
  const size_t rank = output.size();
  const size_t n = inputs.size();
  // Per input, per output dim: the input's dim (1 where it has fewer dims).
  std::vector<Shape> dims(n, Shape(rank, 1));
  for (size_t i = 0; i < n; ++i) {
    if (inputs[i].size() > rank) {
      throw InvalidArgument(prefix(who) + "input shape " + shape_to_string(inputs[i]) +
                            " has more dims than output shape " + shape_to_string(output));
    }
    const size_t lead = rank - inputs[i].size();
    for (size_t d = 0; d < inputs[i].size(); ++d) {
      const int64_t v = inputs[i][d];
      if (v != output[lead + d] && v != 1) {
        throw InvalidArgument(prefix(who) + "input shape " + shape_to_string(inputs[i]) +
                              " cannot be broadcast to " + shape_to_string(output));
      }
      dims[i][lead + d] = v;
    }
  }
  // Collapse: drop output dims of 1, merge neighbours along which every input keeps the same
  // broadcast pattern. Each collapsed dim keeps, per input, whether it advances.
  Shape sizes;
  std::vector<std::vector<bool>> advances(n);
  for (size_t d = 0; d < rank; ++d) {
    if (output[d] == 1) continue;
    bool same = !sizes.empty();
    for (size_t i = 0; i < n && same; ++i) same = advances[i].back() == (dims[i][d] != 1);
    if (same) {
      sizes.back() *= output[d];
    } else {
      sizes.push_back(output[d]);
      for (size_t i = 0; i < n; ++i) advances[i].push_back(dims[i][d] != 1);
    }
  }
  inner_strides_.assign(n, 0);
  outer_strides_.assign(n, {});
  if (shape_size(output) == 0) {
    inner_ = 0;
    outer_ = 0;
    return;
  }
  if (sizes.empty()) {  // every dim is 1: one element
    inner_ = 1;
    outer_ = 1;
    inner_strides_.assign(n, 1);
    return;
  }
  inner_ = sizes.back();
  outer_dims_.assign(sizes.begin(), sizes.end() - 1);
  outer_ = shape_size(outer_dims_);
  for (size_t i = 0; i < n; ++i) {
    int64_t stride = 1;
    inner_strides_[i] = advances[i].back() ? 1 : 0;
    if (advances[i].back()) stride = inner_;
    Shape& os = outer_strides_[i];
    os.assign(outer_dims_.size(), 0);
    for (size_t d = outer_dims_.size(); d-- > 0;) {
      if (advances[i][d]) {
        os[d] = stride;
        stride *= outer_dims_[d];
      }
    }
  }
}

int64_t BroadcastPlan::input_offset(int i, int64_t run) const {
  const Shape& os = outer_strides_[static_cast<size_t>(i)];
  int64_t offset = 0;
  for (size_t d = outer_dims_.size(); d-- > 0 && run > 0;) {
    offset += (run % outer_dims_[d]) * os[d];
    run /= outer_dims_[d];
  }
  return offset;
}

}  // namespace graft
