// Writes GGUF version 3 files (what `stave convert --quantize` produces, and what tests build
// malformed variants from): metadata in insertion order, tensor infos, data aligned to 32 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/formats/gguf.h"

namespace stave::gguf {

class Writer {
 public:
  void SetString(const std::string& key, const std::string& value);
  void SetUint32(const std::string& key, uint32_t value);
  void SetInt32(const std::string& key, int32_t value);
  void SetFloat32(const std::string& key, float value);
  void SetBool(const std::string& key, bool value);
  void SetStringArray(const std::string& key, const std::vector<std::string>& values);
  void SetFloat32Array(const std::string& key, const std::vector<float>& values);
  void SetInt32Array(const std::string& key, const std::vector<int32_t>& values);

  // dims in ggml order (dims[0] contiguous); `data` holds the tensor in `type`'s layout.
  void AddTensor(const std::string& name, std::vector<int64_t> dims, TensorType type,
                 std::string data);

  // The whole file as bytes.
  std::string Serialize() const;
  // Writes to `path` through a temporary file and a rename, so a failed write leaves no half file.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    TensorType type;
    std::string data;
  };
  void Key(const std::string& key, ValueType type);
  std::string Header() const;  // everything before the tensor data, padded to the alignment
  std::string kv_;  // serialized key/value pairs
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace stave::gguf
