#include "providers/cpu/math/cast_string.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace graft {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool same_value(float parsed, double v, int float_bits) {
  if (float_bits == 16) return Float16(parsed).bits == Float16(static_cast<float>(v)).bits;
  return BFloat16(parsed).bits == BFloat16(static_cast<float>(v)).bits;
}

// Shortest scientific digits of `v` in its precision: "4.7892547e-01".
std::string shortest_scientific(double v, int float_bits) {
  char buf[64];
  if (float_bits == 64) {
    return std::string(buf,
                       std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific).ptr);
  }
  const auto f = static_cast<float>(v);
  if (float_bits == 32) {
    return std::string(buf,
                       std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific).ptr);
  }
  for (int precision = 0;; ++precision) {
    std::string s(
        buf,
        std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific, precision).ptr);
    if (precision >= 8 || same_value(std::strtof(s.c_str(), nullptr), v, float_bits)) return s;
  }
}

}  // namespace

double parse_float_string(const KernelContext& ctx, const std::string& s) {
  const std::string t(trim(s));
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size()) {
    ctx.fail("cannot cast string '" + s + "' to a number");
  }
  return v;
}

int64_t parse_int_string(const KernelContext& ctx, const std::string& s) {
  const std::string_view t = trim(s);
  std::string_view digits = t;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec == std::errc() && ptr == digits.data() + digits.size() && !digits.empty()) return v;
  std::string lower(t);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true") return 1;
  if (lower == "false") return 0;
  const double d = parse_float_string(ctx, s);
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(d);
}

std::string format_float(double v, int float_bits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const std::string sci = shortest_scientific(v, float_bits);
  // Split "-d.ddde±xx" into sign, digits and decimal exponent.
  const size_t e_pos = sci.find('e');
  std::string sign, digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (sci[i] == '-') {
      sign = "-";
    } else if (sci[i] != '.') {
      digits += sci[i];
    }
  }
  const int exponent = std::atoi(sci.c_str() + e_pos + 1);
  // NumPy prints positionally from 1e-4 up to 10^(decimal digits of the type).
  const double cutoff = float_bits == 64   ? 1e16
                        : float_bits == 32 ? 1e6
                        : float_bits == 16 ? 1e3
                                           : 1e2;
  const double magnitude = std::fabs(v);
  if (magnitude == 0 || (magnitude >= 1e-4 && magnitude < cutoff)) {
    std::string out;
    if (exponent < 0) {
      out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else {
      const auto int_digits = static_cast<size_t>(exponent) + 1;
      if (digits.size() < int_digits) digits.append(int_digits - digits.size(), '0');
      out = digits.substr(0, int_digits) + ".";
      out += digits.size() > int_digits ? digits.substr(int_digits) : "0";
    }
    return sign + out;
  }
  std::string out = sign + digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  const int a = std::abs(exponent);
  return out + (exponent < 0 ? "e-" : "e+") + (a < 10 ? "0" : "") + std::to_string(a);
}

}  // namespace graft
