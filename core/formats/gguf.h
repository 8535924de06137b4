// GGUF (llama.cpp's model file format, version 2 and 3), read through a memory mapping: the
// header, the metadata key/value pairs, the tensor infos and the aligned tensor data. Tensor data
// is never copied; TensorInfo::data points into the mapping, which the File keeps alive.
// Every count, length, offset and type is checked against the file before use, so a malformed
// file is an error naming the file (and tensor or key), never a crash: this parser is a fuzz target.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/mapped_file.h"

namespace stave::gguf {

// Metadata value types (gguf_type).
enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// Tensor element types (ggml_type). Only the ones stave computes with are named; others are
// carried as their number and refused by the model loader with the tensor's name.
enum class TensorType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kBF16 = 30,
};

// "F32", "Q8_0", ..., or "type 12" for ones stave does not know.
std::string TensorTypeName(TensorType type);
// Elements per block and bytes per block (F32: 1 and 4; Q8_0: 32 and 34; Q4_0: 32 and 18);
// 0 for types stave does not know.
int BlockElements(TensorType type);
int BlockBytes(TensorType type);

// True when the file at `path` starts with the GGUF magic (false when unreadable).
bool HasGgufMagic(const std::string& path);

struct TensorInfo {
  std::string name;
  // ggml order: dims[0] is the contiguous one (a [rows, cols] matrix has dims {cols, rows}).
  std::vector<int64_t> dims;
  TensorType type;
  const unsigned char* data = nullptr;  // into the mapping, aligned as the file says
  size_t bytes = 0;
  int64_t elements() const;
};

// One metadata value: scalars, strings, or arrays of either (arrays of arrays are refused).
struct Value {
  ValueType type;
  ValueType array_type = ValueType::kUint8;  // kArray only
  // Scalars: the value as stored, widened (integers and bool in `i`, unsigned above 2^63-1 are
  // refused; floats in `f`). Strings: `s` views the mapping.
  int64_t i = 0;
  double f = 0;
  std::string_view s;
  // Arrays: element count and where the elements start in the mapping (strings are
  // length-prefixed, so they are decoded on access).
  uint64_t count = 0;
  const unsigned char* elements = nullptr;
};

class File {
 public:
  // Maps and parses `path`.
  static absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path);
  // Parses bytes already in memory (the fuzz target; `name` labels errors). `keep_alive` may own
  // the bytes.
  static absl::StatusOr<std::unique_ptr<File>> Parse(const unsigned char* data, size_t size,
                                                     std::string name,
                                                     std::shared_ptr<const void> keep_alive = {});

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }

  const Value* Find(std::string_view key) const;  // null when absent
  // Typed access; NotFound when absent, InvalidArgument naming the key on a type mismatch.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;  // any integer type or bool
  absl::StatusOr<double> GetFloat(std::string_view key) const;  // float32/64 or any integer
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  // Every key in file order (for `stave` diagnostics and tests).
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;  // null when absent

  // Keeps the mapped bytes alive (tensors that outlive the File hold this).
  std::shared_ptr<const void> keep_alive() const { return keep_alive_; }
  // Opened from a file: drops its resident pages (MappedFile::DropResidentPages); else nothing.
  void DropResidentPages() const {
    if (mapped_ != nullptr) mapped_->DropResidentPages();
  }

 private:
  File() = default;
  std::string name_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<TensorInfo> tensors_;
  std::shared_ptr<const void> keep_alive_;
  std::shared_ptr<const MappedFile> mapped_;  // set by Open
  const unsigned char* bytes_ = nullptr;  // the whole file
  size_t size_ = 0;
};

}  // namespace stave::gguf
