// The safetensors header without LibTorch: an 8-byte little-endian length, then JSON
// ({name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}). Parsed and validated
// here so that SafetensorsFile, the router loader and the fuzz target share one implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stave {

struct SafetensorsEntry {
  std::string dtype;  // "F32", "F16" or "BF16"
  std::vector<int64_t> shape;
  size_t offset = 0;  // from the start of the file
  size_t bytes = 0;
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
};

// Bytes per element of a supported dtype name; 0 for any other name.
size_t SafetensorsDtypeSize(const std::string& dtype);

// Validates the whole header against the `size` bytes of the file at `data` (dtypes, shapes
// against byte ranges, ranges inside the file), so that a truncated or mangled file fails here
// with a message naming `path` and the tensor. On success every entry's shape has non-negative
// dimensions whose product times the dtype size is exactly its byte count.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const unsigned char* data, size_t size,
                                                         const std::string& path);

}  // namespace stave
