// UTF-8 encoding and decoding of single code points for the string kernels.
#pragma once

#include <string>

namespace graft::utf8 {

// Appends code point `c` to `out` as UTF-8.
inline void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Decodes the UTF-8 sequence at s[i], advancing i; false (and i unchanged) when malformed.
inline bool decode(const std::string& s, size_t& i, char32_t& c) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int extra = 0;
  if (b0 >= 0x80) {
    if ((b0 & 0xE0) == 0xC0) {
      extra = 1;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2;
    } else if ((b0 & 0xF8) == 0xF0) {
      extra = 3;
    } else {
      return false;
    }
  }
  if (i + static_cast<size_t>(extra) >= s.size()) return false;
  static constexpr unsigned char kLeadMask[] = {0x7F, 0x1F, 0x0F, 0x07};
  c = b0 & kLeadMask[extra];
  for (int k = 1; k <= extra; ++k) {
    const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) return false;
    c = (c << 6) | (b & 0x3F);
  }
  i += static_cast<size_t>(extra) + 1;
  return true;
}

}  // namespace graft::utf8
