// RegexFullMatch: whether each string matches `pattern` in full. Patterns use RE2 syntax and run
// on std::wregex (ECMAScript grammar, polynomial-time matching) over decoded code points, after
// rewriting the RE2 forms ECMAScript spells differently: a leading (?i), named groups
// (?P<name>...), \A, \z and \Q...\E. Unicode classes (\p{...}), \C and other inline flags are
// refused when the node is built.
#include <regex>
#include <string>

#include "exec/kernel.h"
#include "providers/cpu/string/utf8.h"

namespace graft {
namespace {

std::wstring widen(const std::string& s) {
  std::wstring out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t c = 0;
    if (utf8::decode(s, i, c)) {
      out += static_cast<wchar_t>(c);
    } else {
      out += static_cast<wchar_t>(0xFFFD);  // malformed byte
      ++i;
    }
  }
  return out;
}

bool is_meta(wchar_t c) { return std::wstring(L"\\^$.|?*+()[]{}-/").find(c) != std::wstring::npos; }

class RegexFullMatch final : public Kernel {
 public:
  explicit RegexFullMatch(const KernelInfo& info) {
    if (!info.has_attr("pattern")) info.fail("the pattern attribute is required");
    const std::string pattern = info.attr_string("pattern", "");
    bool icase = false;
    std::wstring source;
    try {
      source = translate(widen(pattern), icase);
    } catch (const std::invalid_argument& e) {
      info.fail("pattern '" + pattern + "': " + e.what());
    }
    auto flags = std::regex_constants::ECMAScript | std::regex_constants::__polynomial;
    if (icase) flags |= std::regex_constants::icase;
    try {
      regex_.assign(source, flags);
    } catch (const std::regex_error& e) {
      info.fail("pattern '" + pattern + "' is not a supported regular expression: " + e.what());
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::String) ctx.fail("input must be a string tensor");
    Tensor& y = ctx.output(0, DType::Bool, x.shape());
    bool* out = y.data<bool>();
    const std::string* in = x.data<std::string>();
    for (int64_t i = 0; i < x.size(); ++i) out[i] = std::regex_match(widen(in[i]), regex_);
  }

 private:
  // Rewrites RE2 syntax into ECMAScript; throws std::invalid_argument for what has no match.
  static std::wstring translate(const std::wstring& p, bool& icase) {
    size_t i = 0;
    if (p.compare(0, 4, L"(?i)") == 0) {
      icase = true;
      i = 4;
    }
    std::wstring out;
    bool in_class = false;
    for (; i < p.size(); ++i) {
      const wchar_t c = p[i];
      if (c == L'\\' && i + 1 < p.size()) {
        const wchar_t e = p[++i];
        if (e == L'p' || e == L'P')
          throw std::invalid_argument("Unicode classes are not supported");
        if (e == L'C') throw std::invalid_argument("\\C is not supported");
        if (e == L'Q') {
          const size_t end = p.find(L"\\E", i + 1);
          const size_t stop = end == std::wstring::npos ? p.size() : end;
          for (size_t k = i + 1; k < stop; ++k) {
            if (is_meta(p[k])) out += L'\\';
            out += p[k];
          }
          i = end == std::wstring::npos ? p.size() : end + 1;
          continue;
        }
        if (!in_class && e == L'A') {
          out += L'^';
        } else if (!in_class && e == L'z') {
          out += L'$';
        } else {
          out += c;
          out += e;
        }
        continue;
      }
      if (in_class) {
        if (c == L'[' && i + 1 < p.size() && p[i + 1] == L':') {
          // A POSIX class such as [:alpha:] is copied whole.
          const size_t end = p.find(L":]", i + 2);
          if (end != std::wstring::npos) {
            out.append(p, i, end + 2 - i);
            i = end + 1;
            continue;
          }
        }
        if (c == L']') in_class = false;
        out += c;
        continue;
      }
      if (c == L'[') {
        in_class = true;
        out += c;
        // A ']' first in the class (after an optional '^') is literal in RE2.
        if (i + 1 < p.size() && p[i + 1] == L'^') out += p[++i];
        if (i + 1 < p.size() && p[i + 1] == L']') {
          out += L"\\]";
          ++i;
        }
        continue;
      }
      if (c == L'(' && p.compare(i, 4, L"(?P<") == 0) {
        const size_t end = p.find(L'>', i);
        if (end == std::wstring::npos) throw std::invalid_argument("unterminated group name");
        out += L'(';
        i = end;
        continue;
      }
      if (c == L'(' && p.compare(i, 3, L"(?<") == 0 && i + 3 < p.size() && p[i + 3] != L'=' &&
          p[i + 3] != L'!') {
        const size_t end = p.find(L'>', i);
        if (end == std::wstring::npos) throw std::invalid_argument("unterminated group name");
        out += L'(';
        i = end;
        continue;
      }
      if (c == L'(' && i + 2 < p.size() && p[i + 1] == L'?' && p[i + 2] != L':') {
        throw std::invalid_argument("inline flags and lookaround groups are not supported");
      }
      out += c;
    }
    return out;
  }

  std::wregex regex_;
};

}  // namespace

GRAFT_CPU_KERNELS(string_regex_full_match) {
  reg.add({"", "RegexFullMatch", 20, 1 << 30, {DType::String}, 0, make<RegexFullMatch>});
}

}  // namespace graft
