// StringSplit: splits each string at `delimiter`, at most `maxsplit` times, like Python's
// str.split: an empty or absent delimiter splits at runs of whitespace and ignores whitespace
// at the ends. Y pads each row of pieces with empty strings to the longest; Z counts the pieces.
#include <algorithm>
#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft {
namespace {

bool is_space(char c) {
  // Python's ASCII whitespace, including the file, group, record and unit separators.
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::vector<std::string> split(const std::string& s, const std::string& delimiter,
                               int64_t maxsplit) {
  std::vector<std::string> pieces;
  if (delimiter.empty()) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && is_space(s[i])) ++i;
      if (i == s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) == maxsplit) {
        pieces.push_back(s.substr(i));  // the rest, trailing whitespace kept
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_space(s[j])) ++j;
      pieces.push_back(s.substr(i, j - i));
      i = j;
    }
    return pieces;
  }
  size_t start = 0;
  while (true) {
    const size_t at = maxsplit >= 0 && static_cast<int64_t>(pieces.size()) == maxsplit
                          ? std::string::npos
                          : s.find(delimiter, start);
    if (at == std::string::npos) {
      pieces.push_back(s.substr(start));
      break;
    }
    pieces.push_back(s.substr(start, at - start));
    start = at + delimiter.size();
  }
  return pieces;
}

class StringSplit final : public Kernel {
 public:
  explicit StringSplit(const KernelInfo& info)
      : delimiter_(info.attr_string("delimiter", "")), maxsplit_(info.attr_int("maxsplit", -1)) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::String) ctx.fail("input must be a string tensor");
    std::vector<std::vector<std::string>> rows;
    size_t widest = 0;
    for (const std::string& s : x.span<std::string>()) {
      rows.push_back(split(s, delimiter_, maxsplit_));
      widest = std::max(widest, rows.back().size());
    }
    Shape y_shape = x.shape();
    y_shape.push_back(static_cast<int64_t>(widest));
    Tensor& y = ctx.output(0, DType::String, y_shape);
    Tensor& z = ctx.output(1, DType::Int64, x.shape());
    std::string* out = y.data<std::string>();
    int64_t* counts = z.data<int64_t>();
    for (size_t r = 0; r < rows.size(); ++r) {
      counts[r] = static_cast<int64_t>(rows[r].size());
      for (size_t k = 0; k < rows[r].size(); ++k) out[r * widest + k] = std::move(rows[r][k]);
    }
  }

 private:
  std::string delimiter_;
  int64_t maxsplit_;
};

}  // namespace

GRAFT_CPU_KERNELS(string_split) {
  reg.add({"", "StringSplit", 20, 1 << 30, {DType::String}, 0, make<StringSplit>});
}

}  // namespace graft
