// GPT-2's byte-level alphabet: every byte maps to one printable code point (printable Latin-1
// bytes to themselves, the rest to U+0100 upwards in byte order), so a byte-level BPE vocabulary
// is plain UTF-8 text and any byte string, valid UTF-8 or not, is encodable losslessly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stave::text {

// The UTF-8 of the code point standing for `byte`.
const std::string& ByteLevelChar(uint8_t byte);

// Each byte of `bytes` as its code point.
std::string ByteLevelEncode(std::string_view bytes);

// The bytes a byte-level token text stands for. Code points outside the alphabet (added tokens
// written in plain text) are copied as their UTF-8.
std::string ByteLevelDecode(std::string_view text);

}  // namespace stave::text
