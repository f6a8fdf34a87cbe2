// Einsum: any equation, with ellipsis broadcasting and repeated labels (diagonals). Operands are
// contracted left to right; each pairwise contraction is arranged as a batched GEMM.
#include <algorithm>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/linalg/gemm_util.h"

namespace graft {
namespace {

constexpr int kEllipsisBase = 52;  // labels 0..51 are A-Z, a-z (ASCII order); then ellipsis dims

struct Equation {
  std::vector<std::vector<int>> terms;  // per input, one label per axis
  std::vector<int> output;
};

int letter_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

// Parses one term into letters with -1 marking the ellipsis; returns false on a bad character.
bool parse_term(const std::string& text, std::vector<int>& labels) {
  bool seen_ellipsis = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '.') {
      if (seen_ellipsis || text.compare(i, 3, "...") != 0) return false;
      seen_ellipsis = true;
      labels.push_back(-1);
      i += 2;
      continue;
    }
    const int label = letter_label(text[i]);
    if (label < 0) return false;
    labels.push_back(label);
  }
  return true;
}

Equation parse_equation(const std::string& raw, const std::vector<int64_t>& ranks,
                        const KernelContext& ctx) {
  std::string eq;
  for (char c : raw)
    if (c != ' ') eq += c;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> term_texts(1);
  for (char c : lhs) {
    if (c == ',')
      term_texts.emplace_back();
    else
      term_texts.back() += c;
  }
  if (term_texts.size() != ranks.size())
    ctx.fail("equation '" + raw + "' has " + std::to_string(term_texts.size()) + " terms for " +
             std::to_string(ranks.size()) + " inputs");
  Equation result;
  int64_t ellipsis_rank = 0;
  std::vector<std::vector<int>> letters(ranks.size());
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (!parse_term(term_texts[i], letters[i])) ctx.fail("cannot parse equation '" + raw + "'");
    const bool has_ellipsis =
        std::find(letters[i].begin(), letters[i].end(), -1) != letters[i].end();
    const int64_t explicit_count = static_cast<int64_t>(letters[i].size()) - has_ellipsis;
    if (ranks[i] < explicit_count || (!has_ellipsis && ranks[i] != explicit_count))
      ctx.fail("term '" + term_texts[i] + "' does not match input " + std::to_string(i) +
               " of rank " + std::to_string(ranks[i]));
    ellipsis_rank = std::max(ellipsis_rank, ranks[i] - explicit_count);
  }
  std::vector<int> counts(kEllipsisBase, 0);
  for (size_t i = 0; i < ranks.size(); ++i) {
    const int64_t explicit_count =
        static_cast<int64_t>(letters[i].size()) -
        (std::find(letters[i].begin(), letters[i].end(), -1) != letters[i].end());
    const int64_t own = ranks[i] - explicit_count;
    std::vector<int> term;
    for (int label : letters[i]) {
      if (label >= 0) {
        term.push_back(label);
        ++counts[static_cast<size_t>(label)];
        continue;
      }
      for (int64_t e = ellipsis_rank - own; e < ellipsis_rank; ++e)
        term.push_back(kEllipsisBase + static_cast<int>(e));
    }
    result.terms.push_back(term);
  }
  if (arrow != std::string::npos) {
    std::vector<int> out_letters;
    if (!parse_term(eq.substr(arrow + 2), out_letters))
      ctx.fail("cannot parse the output of equation '" + raw + "'");
    for (int label : out_letters) {
      if (label >= 0) {
        if (std::count(result.output.begin(), result.output.end(), label) != 0 ||
            counts[static_cast<size_t>(label)] == 0)
          ctx.fail("output label repeated or absent from the inputs in '" + raw + "'");
        result.output.push_back(label);
        continue;
      }
      for (int64_t e = 0; e < ellipsis_rank; ++e)
        result.output.push_back(kEllipsisBase + static_cast<int>(e));
    }
  } else {
    for (int64_t e = 0; e < ellipsis_rank; ++e)
      result.output.push_back(kEllipsisBase + static_cast<int>(e));
    for (int label = 0; label < kEllipsisBase; ++label)
      if (counts[static_cast<size_t>(label)] == 1) result.output.push_back(label);
  }
  return result;
}

template <typename Acc>
struct Operand {
  std::vector<int> labels;  // one per axis; repeats allowed before normalization
  Shape dims;
  std::vector<Acc> data;
};

// Lays `op` out as a contiguous tensor with axes `labels` of sizes `sizes`: repeated source labels
// take the diagonal, source dims of 1 broadcast, and every source label must be among `labels`.
template <typename Acc>
std::vector<Acc> materialize(const Operand<Acc>& op, const std::vector<int>& labels,
                             const Shape& sizes, const KernelContext& ctx) {
  const size_t rank = labels.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t src_stride = 1;
  for (size_t a = op.labels.size(); a-- > 0;) {
    const size_t j =
        static_cast<size_t>(std::find(labels.begin(), labels.end(), op.labels[a]) - labels.begin());
    if (op.dims[a] != 1) {
      if (op.dims[a] != sizes[j]) ctx.fail("operand dimensions do not match for an einsum label");
      strides[j] += src_stride;
    }
    src_stride *= op.dims[a];
  }
  const int64_t count = shape_size(sizes);
  std::vector<Acc> out(static_cast<size_t>(count));
  if (count == 0) return out;
  std::vector<int64_t> index(rank, 0);
  int64_t offset = 0;
  for (int64_t o = 0; o < count; ++o) {
    out[static_cast<size_t>(o)] = op.data[static_cast<size_t>(offset)];
    for (size_t d = rank; d-- > 0;) {
      offset += strides[d];
      if (++index[d] < sizes[d]) break;
      offset -= strides[d] * sizes[d];
      index[d] = 0;
    }
  }
  return out;
}

// Removes repeated labels (diagonal) and sums out the labels not in `needed`.
template <typename Acc>
Operand<Acc> normalize(const Operand<Acc>& op, const std::vector<int>& needed,
                       const KernelContext& ctx) {
  std::vector<int> keep, sum;
  Shape keep_sizes, sum_sizes;
  for (size_t a = 0; a < op.labels.size(); ++a) {
    const int label = op.labels[a];
    if (std::count(keep.begin(), keep.end(), label) || std::count(sum.begin(), sum.end(), label))
      continue;
    int64_t size = 1;
    for (size_t b = 0; b < op.labels.size(); ++b)
      if (op.labels[b] == label) size = std::max(size, op.dims[b]);
    const bool needed_label = std::count(needed.begin(), needed.end(), label) != 0;
    (needed_label ? keep : sum).push_back(label);
    (needed_label ? keep_sizes : sum_sizes).push_back(size);
  }
  std::vector<int> order = keep;
  order.insert(order.end(), sum.begin(), sum.end());
  Shape sizes = keep_sizes;
  sizes.insert(sizes.end(), sum_sizes.begin(), sum_sizes.end());
  Operand<Acc> result{keep, keep_sizes, materialize(op, order, sizes, ctx)};
  const int64_t inner = shape_size(sum_sizes);
  if (inner != 1) {
    const int64_t outer = shape_size(keep_sizes);
    std::vector<Acc> reduced(static_cast<size_t>(outer), Acc(0));
    for (int64_t i = 0; i < outer; ++i)
      for (int64_t j = 0; j < inner; ++j)
        reduced[static_cast<size_t>(i)] += result.data[static_cast<size_t>(i * inner + j)];
    result.data = std::move(reduced);
  }
  return result;
}

bool has_label(const std::vector<int>& labels, int label) {
  return std::find(labels.begin(), labels.end(), label) != labels.end();
}

// Contracts two normalized operands, keeping the labels in `needed`.
template <typename Acc>
Operand<Acc> contract(const Operand<Acc>& x, const Operand<Acc>& y, const std::vector<int>& needed,
                      const KernelContext& ctx) {
  std::vector<int> batch, ml, kl, nl;
  Shape batch_sizes, m_sizes, k_sizes, n_sizes;
  auto size_of = [](const Operand<Acc>& op, int label) {
    return op.dims[static_cast<size_t>(std::find(op.labels.begin(), op.labels.end(), label) -
                                       op.labels.begin())];
  };
  for (int label : x.labels) {
    if (has_label(y.labels, label)) {
      const int64_t size = std::max(size_of(x, label), size_of(y, label));
      const bool keep = has_label(needed, label);
      (keep ? batch : kl).push_back(label);
      (keep ? batch_sizes : k_sizes).push_back(size);
    } else {
      ml.push_back(label);
      m_sizes.push_back(size_of(x, label));
    }
  }
  for (int label : y.labels) {
    if (!has_label(x.labels, label)) {
      nl.push_back(label);
      n_sizes.push_back(size_of(y, label));
    }
  }
  auto concat = [](std::vector<int> a, const std::vector<int>& b, const std::vector<int>& c) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
  };
  auto concat_shape = [](Shape a, const Shape& b, const Shape& c) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
  };
  const std::vector<Acc> a =
      materialize(x, concat(batch, ml, kl), concat_shape(batch_sizes, m_sizes, k_sizes), ctx);
  const std::vector<Acc> b =
      materialize(y, concat(batch, kl, nl), concat_shape(batch_sizes, k_sizes, n_sizes), ctx);
  const int64_t nb = shape_size(batch_sizes), m = shape_size(m_sizes), k = shape_size(k_sizes),
                n = shape_size(n_sizes);
  Operand<Acc> result{concat(batch, ml, nl), concat_shape(batch_sizes, m_sizes, n_sizes), {}};
  result.data.assign(static_cast<size_t>(nb * m * n), Acc(0));
  if (m * n > 0)
    for (int64_t i = 0; i < nb; ++i)
      cpu::gemm<Acc>(false, false, m, n, k, a.data() + i * m * k, b.data() + i * k * n,
                     result.data.data() + i * m * n);
  return result;
}

class Einsum : public Kernel {
 public:
  explicit Einsum(const KernelInfo& info) : equation_(info.attr_string("equation", "")) {
    if (equation_.empty()) info.fail("attribute 'equation' is required");
  }

  void compute(KernelContext& ctx) override {
    std::vector<int64_t> ranks;
    for (int i = 0; i < ctx.num_inputs(); ++i) ranks.push_back(ctx.input(i).rank());
    if (ranks.empty()) ctx.fail("Einsum needs at least one input");
    const DType dtype = ctx.input(0).dtype();
    for (int i = 1; i < ctx.num_inputs(); ++i)
      if (ctx.input(i).dtype() != dtype) ctx.fail("inputs have different dtypes");
    const Equation eq = parse_equation(equation_, ranks, ctx);

    dispatch_number(dtype, "Einsum", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Acc = cpu::AccumulateType<T>;
      std::vector<Operand<Acc>> ops;
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        const Tensor& t = ctx.input(i);
        Operand<Acc> op{eq.terms[static_cast<size_t>(i)], t.shape(), {}};
        op.data.resize(static_cast<size_t>(t.size()));
        for (int64_t j = 0; j < t.size(); ++j)
          op.data[static_cast<size_t>(j)] = static_cast<Acc>(t.data<T>()[j]);
        ops.push_back(std::move(op));
      }
      // Labels still needed after operand `i`: the output's and those of later operands.
      auto needed_after = [&](size_t i) {
        std::vector<int> needed = eq.output;
        for (size_t j = i + 1; j < ops.size(); ++j)
          needed.insert(needed.end(), ops[j].labels.begin(), ops[j].labels.end());
        return needed;
      };
      Operand<Acc> acc = normalize(ops[0], needed_after(0), ctx);
      for (size_t i = 1; i < ops.size(); ++i) {
        std::vector<int> needed = needed_after(i);
        std::vector<int> for_y = needed;
        for_y.insert(for_y.end(), acc.labels.begin(), acc.labels.end());
        const Operand<Acc> y = normalize(ops[i], for_y, ctx);
        std::vector<int> for_x = needed;
        for_x.insert(for_x.end(), y.labels.begin(), y.labels.end());
        acc = contract(normalize(acc, for_x, ctx), y, needed, ctx);
      }
      acc = normalize(acc, eq.output, ctx);
      Shape out_shape;
      for (int label : eq.output) {
        int64_t size = 1;
        for (size_t a = 0; a < acc.labels.size(); ++a)
          if (acc.labels[a] == label) size = acc.dims[a];
        out_shape.push_back(size);
      }
      const std::vector<Acc> out = materialize(acc, eq.output, out_shape, ctx);
      Tensor& y = ctx.output(0, dtype, out_shape);
      for (size_t j = 0; j < out.size(); ++j) y.data<T>()[j] = static_cast<T>(out[j]);
    });
  }

 private:
  std::string equation_;
};

}  // namespace

GRAFT_CPU_KERNELS(einsum) { reg.add({"", "Einsum", 12, 1 << 30, kNumberTypes, 0, make<Einsum>}); }

}  // namespace graft
