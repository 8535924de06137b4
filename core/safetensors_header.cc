#include "core/safetensors_header.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace stave {

size_t SafetensorsDtypeSize(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const unsigned char* data, size_t size,
                                                         const std::string& path) {
  if (size < 8) return absl::DataLossError(absl::StrCat(path, ": too short for a safetensors header"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);  // little-endian on every platform we target
  if (header_len > size - 8)
    // No numbers in the message: the "length" is the file's first 8 bytes, whatever the file is.
    return absl::DataLossError(absl::StrCat(path, ": not a safetensors file (its header length exceeds the "
                                            "file; truncated?)"));
  const char* header_begin = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len, nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return absl::DataLossError(absl::StrCat(path, ": the JSON header is malformed"));
  SafetensorsHeader out;
  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in the lambda below.
  for (auto& item : header.items()) {
    const std::string& name = item.key();
    auto& value = item.value();
    if (name == "__metadata__") {
      if (value.is_object())
        for (auto& [k, v] : value.items())
          if (v.is_string()) out.metadata[k] = v.get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) {
      return absl::DataLossError(absl::StrCat(path, ": tensor '", name, "': ", why));
    };
    if (!value.is_object() || !value.contains("dtype") || !value["dtype"].is_string() ||
        !value.contains("shape") || !value["shape"].is_array() || !value.contains("data_offsets") ||
        !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      return bad("header entry lacks dtype, shape or data_offsets");
    SafetensorsEntry e;
    e.dtype = value["dtype"].get<std::string>();
    const size_t dtype_size = SafetensorsDtypeSize(e.dtype);
    if (dtype_size == 0)
      return bad(absl::StrCat("unsupported dtype ", e.dtype, " (supported: F32, F16, BF16)"));
    // The element count is computed with overflow checks: a shape whose product wraps around
    // (e.g. [2^32, 2^32] with an empty byte range) used to pass the byte-range check and then
    // made LoadFloat's view() throw out of a Status-returning function.
    size_t elements = 1;
    bool overflow = false;
    for (auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) return bad("shape holds a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return bad("shape holds a dimension too large for any file");
      e.shape.push_back(static_cast<int64_t>(dim));
      overflow |= __builtin_mul_overflow(elements, dim, &elements);
    }
    auto& offs = value["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      return bad("data_offsets are not non-negative integers");
    size_t begin = offs[0].get<size_t>(), end = offs[1].get<size_t>();
    if (begin > end || end > data_size)
      return bad(absl::StrCat("data range [", begin, ", ", end, ") lies outside the ", data_size,
                              " data bytes of the file (truncated?)"));
    size_t expected_bytes = 0;
    overflow |= __builtin_mul_overflow(elements, dtype_size, &expected_bytes);
    if (overflow || end - begin != expected_bytes)
      return bad(absl::StrCat("byte range of ", end - begin, " does not match shape [",
                              absl::StrJoin(e.shape, ","), "] of ", e.dtype));
    e.offset = data_start + begin;
    e.bytes = end - begin;
    out.entries[name] = std::move(e);
  }
  return out;
}

}  // namespace stave
