// Text handed to clients must be valid UTF-8 (protobuf string fields require it, and terminals
// and JSON need it): byte-fallback tokens can produce stray or truncated byte sequences.
#pragma once

#include <string>
#include <string_view>

namespace stave {

// `text` with every ill-formed byte sequence replaced by U+FFFD (one per bad lead byte together
// with the continuation bytes after it). Valid input is returned unchanged.
std::string ToValidUtf8(std::string_view text);

}  // namespace stave
