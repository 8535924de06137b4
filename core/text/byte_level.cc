#include "core/text/byte_level.h"

#include <array>

namespace stave::text {
namespace {

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {  // the alphabet ends at U+0143: two bytes at most
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

struct Tables {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 0x144> to_byte;  // code point -> byte, -1 outside the alphabet
  Tables() {
    to_byte.fill(-1);
    // bytes_to_unicode() of GPT-2's encoder.py.
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const int cp = printable(b) ? b : 256 + next++;
      to_char[b] = Utf8(cp);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& T() {
  static const Tables tables;
  return tables;
}

}  // namespace

const std::string& ByteLevelChar(uint8_t byte) { return T().to_char[byte]; }

std::string ByteLevelEncode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += T().to_char[b];
  return out;
}

std::string ByteLevelDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    uint32_t cp = 0x7FFFFFFF;
    size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
      len = 2;
    }
    if (cp < T().to_byte.size() && T().to_byte[cp] >= 0) {
      out.push_back(static_cast<char>(T().to_byte[cp]));
    } else {
      // Not in the alphabet: copy the whole UTF-8 sequence (or the stray byte) as it is.
      if (c >= 0xC0) {
        len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        size_t k = 1;
        while (k < len && i + k < text.size() &&
               (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80)
          ++k;
        len = k;
      }
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace stave::text
