// Gradient rules for MatMul and Gemm.
#include <algorithm>
#include <optional>

#include "autodiff/rule.h"

namespace graft::autodiff {
namespace {

// Swaps the last two axes of a value of rank `rank`.
std::string transpose_last_two(RuleContext& c, const std::string& x, int64_t rank) {
  std::vector<int64_t> perm(static_cast<size_t>(rank));
  for (int64_t i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = i;
  std::swap(perm[static_cast<size_t>(rank - 1)], perm[static_cast<size_t>(rank - 2)]);
  return c.emit1("Transpose", {x}, {Attr::ints("perm", perm)});
}

// db for y = a @ b with a matrix b of static shape [k, n] shared by every batch entry of a: the
// batch axes fold into the GEMM's inner dimension, a^T dy over all rows at once (no per-batch
// products to sum afterwards).
std::string shared_matrix_grad(RuleContext& c, const std::string& a, const std::string& dy,
                               int64_t k, int64_t n) {
  const std::string a2 = c.emit1("Reshape", {a, c.ints_constant({-1, k})});
  const std::string dy2 = c.emit1("Reshape", {dy, c.ints_constant({-1, n})});
  return c.emit1("Gemm", {a2, dy2}, {Attr::i("transA", 1)});
}

// y = a @ b, batched with broadcasting: da = dy @ b^T, db = a^T @ dy, each summed over the batch
// axes its operand was broadcast along. A 1-D operand is a row (a) or column (b) vector that
// MatMul drops from the result; the same view is taken here.
void matmul_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const int64_t ra = c.static_rank(c.input(0)), rb = c.static_rank(c.input(1));
  if (ra < 0 || rb < 0) c.fail("needs the ranks of both operands (run shape inference)");
  std::string a = c.input(0), b = c.input(1);
  if (ra == 1) {
    a = c.emit1("Unsqueeze", {a, c.ints_constant({0})});
    dy = c.emit1("Unsqueeze", {dy, c.ints_constant({-2})});
  }
  if (rb == 1) {
    b = c.emit1("Unsqueeze", {b, c.ints_constant({1})});
    dy = c.emit1("Unsqueeze", {dy, c.ints_constant({-1})});
  }
  // Shapes of the unreduced gradients: the output's batch axes with each operand's matrix axes
  // (-1 where a dimension is known only at run time; the ranks are always known here).
  const int64_t ry = c.static_rank(c.output(0));
  std::optional<std::vector<int64_t>> da_shape, db_shape;
  if (ry >= 0) {
    const int64_t batch_rank = ry - (ra >= 2 ? 1 : 0) - (rb >= 2 ? 1 : 0);
    da_shape = std::vector<int64_t>(static_cast<size_t>(batch_rank + (ra >= 2 ? 2 : 1)), -1);
    db_shape = std::vector<int64_t>(static_cast<size_t>(batch_rank + (rb >= 2 ? 2 : 1)), -1);
    auto ys = c.static_shape(c.output(0)), as = c.static_shape(c.input(0)),
         bs = c.static_shape(c.input(1));
    if (ys && as && bs && ra >= 2 && rb >= 2) {
      std::vector<int64_t> batch(ys->begin(), ys->end() - 2);
      da_shape = batch;
      da_shape->insert(da_shape->end(), as->end() - 2, as->end());
      db_shape = batch;
      db_shape->insert(db_shape->end(), bs->end() - 2, bs->end());
    }
  }
  const int64_t rank_a = std::max<int64_t>(ra, 2), rank_b = std::max<int64_t>(rb, 2);
  if (c.needs_input_grad(0)) {
    std::string da = c.emit1("MatMul", {dy, transpose_last_two(c, b, rank_b)});
    if (ra == 1) da = c.emit1("Squeeze", {da, c.ints_constant({-2})});
    c.set_input_grad(0, c.unbroadcast(da, c.input(0), da_shape));
  }
  const auto bs = c.static_shape(c.input(1));
  if (c.needs_input_grad(1) && rb == 2 && ra > 2 && bs) {
    c.set_input_grad(1, shared_matrix_grad(c, a, dy, (*bs)[0], (*bs)[1]));
  } else if (c.needs_input_grad(1)) {
    std::string db = c.emit1("MatMul", {transpose_last_two(c, a, rank_a), dy});
    if (rb == 1) db = c.emit1("Squeeze", {db, c.ints_constant({-1})});
    c.set_input_grad(1, c.unbroadcast(db, c.input(1), db_shape));
  }
}

// y = alpha * op(a) @ op(b) + beta * c, with op(x) = x or x^T.
void gemm_grad(RuleContext& c) {
  std::string dy = c.output_grad(0);
  if (dy.empty()) return;
  const int64_t ta = c.attr_int("transA", 0) != 0, tb = c.attr_int("transB", 0) != 0;
  const float alpha = c.attr_float("alpha", 1.0f), beta = c.attr_float("beta", 1.0f);
  std::vector<Attr> scale = {Attr::f("alpha", alpha)};
  const std::string &a = c.input(0), &b = c.input(1);
  if (c.needs_input_grad(0)) {
    // op(a) gradient is alpha * dy @ op(b)^T; transposed back when transA.
    std::string da =
        ta ? c.emit1("Gemm", {b, dy},
                     {Attr::f("alpha", alpha), Attr::i("transA", tb), Attr::i("transB", 1)})
           : c.emit1("Gemm", {dy, b}, {Attr::f("alpha", alpha), Attr::i("transB", 1 - tb)});
    c.set_input_grad(0, da);
  }
  if (c.needs_input_grad(1)) {
    // op(b) gradient is alpha * op(a)^T @ dy; transposed back when transB.
    std::string db =
        tb ? c.emit1("Gemm", {dy, a},
                     {Attr::f("alpha", alpha), Attr::i("transA", 1), Attr::i("transB", ta)})
           : c.emit1("Gemm", {a, dy}, {Attr::f("alpha", alpha), Attr::i("transA", 1 - ta)});
    c.set_input_grad(1, db);
  }
  if (c.num_inputs() > 2 && c.needs_input_grad(2)) {
    std::string dc = beta == 1.0f ? dy : c.emit1("Mul", {dy, c.scalar_like(beta, dy)});
    c.set_input_grad(2, c.unbroadcast(dc, c.input(2)));
  }
}

}  // namespace

GRAFT_GRADIENT_RULES(linalg) {
  reg.add({"", "MatMul", 1, 1 << 30, &matmul_grad});
  reg.add({"", "Gemm", 7, 1 << 30, &gemm_grad});
}

}  // namespace graft::autodiff
