#include "exec/matmul_shape.h"

#include <algorithm>
#include <string>
#include <utility>

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

MatMulShape plan_fused_matmul(const KernelContext& ctx, const Tensor& a, const Tensor& b,
                              const Tensor* c, bool trans_a, bool trans_b) {
  if (a.dtype() != b.dtype())
    ctx.fail(std::string("A is ") + dtype_name(a.dtype()) + " but B is " + dtype_name(b.dtype()));
  if ((trans_a && a.rank() < 2) || (trans_b && b.rank() < 2))
    ctx.fail("a transposed operand (A " + shape_to_string(a.shape()) + ", B " +
             shape_to_string(b.shape()) + ") must have rank 2 or more");
  // The shapes MatMul sees: the stored ones with the last two axes swapped where transposed
  // (a 1-D operand, never transposed, is promoted and dropped as MatMul does).
  Shape as = a.shape(), bs = b.shape();
  if (trans_a) std::swap(as[as.size() - 1], as[as.size() - 2]);
  if (trans_b) std::swap(bs[bs.size() - 1], bs[bs.size() - 2]);
  MatMulShape plan = plan_matmul(ctx, as, bs);
  if (c != nullptr) {
    if (c->dtype() != a.dtype())
      ctx.fail(std::string("C is ") + dtype_name(c->dtype()) + " but A is " +
               dtype_name(a.dtype()));
    if (c->size() != plan.n && c->size() != 1)
      ctx.fail("C " + shape_to_string(c->shape()) + " is not one value per column of the " +
               shape_to_string(plan.out) + " product, nor a single value");
    if (plan.out.empty() || (c->rank() > 1 && c->size() != 1) || plan.k == 0)
      ctx.fail("C " + shape_to_string(c->shape()) + " cannot be added to every row of the " +
               shape_to_string(plan.out) + " product");
  }
  return plan;
}

GemmShape plan_gemm(const KernelContext& ctx, const Tensor& a, const Tensor& b, const Tensor* c,
                    bool trans_a, bool trans_b) {
  if (a.rank() != 2 || b.rank() != 2)
    ctx.fail("A and B must be 2-D, got " + shape_to_string(a.shape()) + " and " +
             shape_to_string(b.shape()));
  if (a.dtype() != b.dtype()) ctx.fail("A and B have different dtypes");
  GemmShape s;
  s.m = trans_a ? a.dim(1) : a.dim(0);
  s.k = trans_a ? a.dim(0) : a.dim(1);
  s.n = trans_b ? b.dim(0) : b.dim(1);
  if ((trans_b ? b.dim(1) : b.dim(0)) != s.k)
    ctx.fail("inner dimensions differ: A " + shape_to_string(a.shape()) + ", B " +
             shape_to_string(b.shape()) + (trans_a ? " (transA)" : "") +
             (trans_b ? " (transB)" : ""));
  if (c != nullptr) {
    if (c->dtype() != a.dtype()) ctx.fail("C has a different dtype from A");
    if (c->rank() > 2) ctx.fail("C must have rank 2 or less, got " + shape_to_string(c->shape()));
    if (c->rank() >= 1) s.c_cols = c->dim(c->rank() - 1);
    if (c->rank() == 2) s.c_rows = c->dim(0);
    if ((s.c_rows != 1 && s.c_rows != s.m) || (s.c_cols != 1 && s.c_cols != s.n))
      ctx.fail("C of shape " + shape_to_string(c->shape()) + " does not broadcast to [" +
               std::to_string(s.m) + ", " + std::to_string(s.n) + "]");
  }
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
