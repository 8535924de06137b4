// Reading and writing the safetensors format: an 8-byte little-endian header length, a JSON header
// ({name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}), then raw tensor bytes.
// The header is parsed with nlohmann::json and the data is memory-mapped.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "core/mapped_file.h"
#include "core/safetensors_header.h"

namespace stave {

class SafetensorsFile {
 public:
  using Entry = SafetensorsEntry;

  // Validates the whole header (dtypes, shapes against byte ranges, ranges inside the file), so
  // that a truncated or mangled file fails here with a message naming the file and tensor.
  static absl::StatusOr<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool Has(const std::string& name) const { return entries_.count(name) > 0; }

  // The tensor as an owned, contiguous fp32 CPU tensor (F16/BF16 upcast).
  absl::StatusOr<at::Tensor> LoadFloat(const std::string& name) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any of fp32/fp16/bf16, CPU or not) in insertion order.
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace stave
