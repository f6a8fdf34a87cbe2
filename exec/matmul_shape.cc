#include "exec/matmul_shape.h"

#include <algorithm>
#include <string>

namespace graft {

MatMulShape plan_matmul(const KernelContext& ctx, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) ctx.fail("operands must have rank 1 or more");
  MatMulShape s;
  s.a = a;
  s.b = b;
  if (a.size() == 1) s.a.insert(s.a.begin(), 1);
  if (b.size() == 1) s.b.push_back(1);
  s.m = s.a[s.a.size() - 2];
  s.k = s.a.back();
  s.n = s.b.back();
  if (s.b[s.b.size() - 2] != s.k) {
    ctx.fail("inner dimensions differ: A " + shape_to_string(a) + ", B " + shape_to_string(b));
  }
  if (!broadcast_batch(Shape(s.a.begin(), s.a.end() - 2), Shape(s.b.begin(), s.b.end() - 2),
                       s.batch, s.a_index, s.b_index)) {
    ctx.fail("batch dimensions do not broadcast: A " + shape_to_string(a) + ", B " +
             shape_to_string(b));
  }
  s.out = s.batch;
  if (a.size() != 1) s.out.push_back(s.m);
  if (b.size() != 1) s.out.push_back(s.n);
  return s;
}

bool broadcast_batch(const Shape& a, const Shape& b, Shape& out, std::vector<int64_t>& a_index,
                     std::vector<int64_t>& b_index) {
  const size_t rank = std::max(a.size(), b.size());
  Shape pa(rank - a.size(), 1), pb(rank - b.size(), 1);
  pa.insert(pa.end(), a.begin(), a.end());
  pb.insert(pb.end(), b.begin(), b.end());
  out.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) return false;
    out[i] = pa[i] == 1 ? pb[i] : pa[i];
  }
  const int64_t count = shape_size(out);
  a_index.assign(static_cast<size_t>(count), 0);
  b_index.assign(static_cast<size_t>(count), 0);
  for (int64_t o = 0; o < count; ++o) {
    int64_t rest = o, ia = 0, ib = 0, sa = 1, sb = 1;
    for (size_t d = rank; d-- > 0;) {
      const int64_t coord = rest % out[d];
      rest /= out[d];
      if (pa[d] != 1) ia += coord * sa;
      if (pb[d] != 1) ib += coord * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    a_index[static_cast<size_t>(o)] = ia;
    b_index[static_cast<size_t>(o)] = ib;
  }
  return true;
}

}  // namespace graft
