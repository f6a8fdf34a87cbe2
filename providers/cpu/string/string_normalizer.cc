// StringNormalizer: drops the elements listed in `stopwords` (optionally ignoring case), then
// lower- or upper-cases the rest. Accepts [C] and [1, C] tensors; when every element is dropped
// the output is a single empty string.
#include <locale>
#include <string>
#include <unordered_set>
#include <vector>

#include "exec/kernel.h"
#include "providers/cpu/string/utf8.h"

namespace graft {
namespace {

enum class CaseChange { None, Lower, Upper };

class StringNormalizer final : public Kernel {
 public:
  explicit StringNormalizer(const KernelInfo& info)
      : case_sensitive_(info.attr_int("is_case_sensitive", 0) != 0) {
    const std::string action = info.attr_string("case_change_action", "NONE");
    if (action == "NONE") {
      case_ = CaseChange::None;
    } else if (action == "LOWER") {
      case_ = CaseChange::Lower;
    } else if (action == "UPPER") {
      case_ = CaseChange::Upper;
    } else {
      info.fail("unknown case_change_action '" + action + "'");
    }
    // Case mapping beyond ASCII needs a UTF-8 locale; the node's own if installed, else C.UTF-8.
    const std::string name = info.attr_string("locale", "en_US");
    for (const std::string& candidate : {name + ".UTF-8", name + ".utf8", std::string("C.UTF-8")}) {
      try {
        locale_ = std::locale(candidate.c_str());
        break;
      } catch (const std::runtime_error&) {
      }
    }
    for (const std::string& word : info.attr_strings("stopwords")) {
      stopwords_.insert(case_sensitive_ ? word : change_case(word, CaseChange::Lower));
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::String) ctx.fail("input must be a string tensor");
    const bool two_d = x.rank() == 2;
    if (!(x.rank() == 1 || (two_d && x.dim(0) == 1))) {
      ctx.fail("input must have shape [C] or [1, C], got " + shape_to_string(x.shape()));
    }
    std::vector<std::string> kept;
    for (const std::string& s : x.span<std::string>()) {
      if (!stopwords_.empty()) {
        const bool stop =
            stopwords_.count(case_sensitive_ ? s : change_case(s, CaseChange::Lower)) > 0;
        if (stop) continue;
      }
      kept.push_back(case_ == CaseChange::None ? s : change_case(s, case_));
    }
    if (kept.empty()) kept.emplace_back();
    const auto count = static_cast<int64_t>(kept.size());
    Tensor& y = ctx.output(0, DType::String, two_d ? Shape{1, count} : Shape{count});
    std::string* out = y.data<std::string>();
    for (size_t i = 0; i < kept.size(); ++i) out[i] = std::move(kept[i]);
  }

 private:
  std::string change_case(const std::string& s, CaseChange action) const {
    const auto& facet = std::use_facet<std::ctype<wchar_t>>(locale_);
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      char32_t c = 0;
      if (!utf8::decode(s, i, c)) {
        out += s[i++];  // malformed bytes pass through
        continue;
      }
      const auto w = static_cast<wchar_t>(c);
      utf8::append(out, static_cast<char32_t>(action == CaseChange::Lower ? facet.tolower(w)
                                                                          : facet.toupper(w)));
    }
    return out;
  }

  bool case_sensitive_;
  CaseChange case_ = CaseChange::None;
  std::locale locale_ = std::locale::classic();
  std::unordered_set<std::string> stopwords_;
};

}  // namespace

GRAFT_CPU_KERNELS(string_normalizer) {
  reg.add({"", "StringNormalizer", 10, 1 << 30, {DType::String}, 0, make<StringNormalizer>});
}

}  // namespace graft
