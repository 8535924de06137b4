#include "core/formats/gguf.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace stave::gguf {
namespace {

// Debian's Abseil has its own string_view type, which StrCat wants.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;

// A bounds-checked little-endian cursor over the file: every read says whether it fit, so the
// parser never reads past the end whatever the counts and lengths in the file claim.
class Reader {
 public:
  Reader(const unsigned char* data, size_t size) : data_(data), size_(size) {}
  size_t offset() const { return offset_; }
  size_t remaining() const { return size_ - offset_; }
  const unsigned char* here() const { return data_ + offset_; }

  template <typename T>
  bool Read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }
  bool Skip(uint64_t bytes) {
    if (bytes > remaining()) return false;
    offset_ += bytes;
    return true;
  }
  bool ReadString(std::string_view* out) {
    uint64_t length;
    if (!Read(&length) || length > remaining() || length > kMaxStringBytes) return false;
    *out = std::string_view(reinterpret_cast<const char*>(data_ + offset_), length);
    offset_ += length;
    return true;
  }

 private:
  const unsigned char* data_;
  size_t size_;
  size_t offset_ = 0;
};

// Bytes of one scalar of `type`; 0 for strings and arrays (variable) and unknown types.
size_t ScalarBytes(ValueType type) {
  switch (type) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    default: return 0;
  }
}

bool IsInteger(ValueType type) {
  return type != ValueType::kFloat32 && type != ValueType::kFloat64 && ScalarBytes(type) > 0;
}

// Reads a scalar of `type` at `p` (which has ScalarBytes(type) bytes) into value->i or value->f.
// False for a uint64 that does not fit an int64.
bool DecodeScalar(ValueType type, const unsigned char* p, Value* value) {
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  switch (type) {
    case ValueType::kUint8: value->i = load(uint8_t{}); return true;
    // NOLINTNEXTLINE(bugprone-signed-char-misuse): GGUF INT8 is signed; the sign extension is the point.
    case ValueType::kInt8: value->i = load(int8_t{}); return true;
    case ValueType::kBool: value->i = load(uint8_t{}) != 0; return true;
    case ValueType::kUint16: value->i = load(uint16_t{}); return true;
    case ValueType::kInt16: value->i = load(int16_t{}); return true;
    case ValueType::kUint32: value->i = load(uint32_t{}); return true;
    case ValueType::kInt32: value->i = load(int32_t{}); return true;
    case ValueType::kInt64: value->i = load(int64_t{}); return true;
    case ValueType::kUint64: {
      uint64_t v = load(uint64_t{});
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      value->i = static_cast<int64_t>(v);
      return true;
    }
    case ValueType::kFloat32: value->f = load(float{}); return true;
    case ValueType::kFloat64: value->f = load(double{}); return true;
    default: return false;
  }
}

absl::Status Malformed(const std::string& name, size_t offset, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": not a valid GGUF file: ", Sv(what), " (at byte ", offset, ")"));
}

}  // namespace

std::string TensorTypeName(TensorType type) {
  switch (type) {
    case TensorType::kF32: return "F32";
    case TensorType::kF16: return "F16";
    case TensorType::kBF16: return "BF16";
    case TensorType::kQ8_0: return "Q8_0";
    case TensorType::kQ4_0: return "Q4_0";
  }
  // ggml's other types, named so that "unsupported tensor type" errors are readable.
  switch (static_cast<uint32_t>(type)) {
    case 3: return "Q4_1";
    case 6: return "Q5_0";
    case 7: return "Q5_1";
    case 9: return "Q8_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K";
    case 12: return "Q4_K";
    case 13: return "Q5_K";
    case 14: return "Q6_K";
    case 15: return "Q8_K";
    case 24: return "I8";
    case 25: return "I16";
    case 26: return "I32";
    case 27: return "I64";
    case 28: return "F64";
  }
  return absl::StrCat("type ", static_cast<uint32_t>(type));
}

int BlockElements(TensorType type) {
  switch (type) {
    case TensorType::kF32: case TensorType::kF16: case TensorType::kBF16: return 1;
    case TensorType::kQ8_0: case TensorType::kQ4_0: return 32;
  }
  return 0;
}

int BlockBytes(TensorType type) {
  switch (type) {
    case TensorType::kF32: return 4;
    case TensorType::kF16: case TensorType::kBF16: return 2;
    case TensorType::kQ8_0: return 34;
    case TensorType::kQ4_0: return 18;
  }
  return 0;
}

bool HasGgufMagic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  return f.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

int64_t TensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<File>> File::Open(const std::string& path) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  const MappedFile& m = **mapped;
  auto file = Parse(m.data(), m.size(), path, *mapped);
  if (file.ok()) (*file)->mapped_ = *mapped;
  return file;
}

absl::StatusOr<std::unique_ptr<File>> File::Parse(const unsigned char* data, size_t size,
                                                  std::string name,
                                                  std::shared_ptr<const void> keep_alive) {
  std::unique_ptr<File> file(new File());
  file->name_ = std::move(name);
  file->keep_alive_ = std::move(keep_alive);
  file->bytes_ = data;
  file->size_ = size;
  const std::string& fname = file->name_;
  Reader r(data, size);

  uint32_t magic = 0;
  if (!r.Read(&magic) || magic != kMagic) return Malformed(fname, 0, "no GGUF magic");
  if (!r.Read(&file->version_)) return Malformed(fname, r.offset(), "truncated header");
  if (file->version_ != 2 && file->version_ != 3)
    return absl::InvalidArgumentError(absl::StrCat(fname, ": GGUF version ", file->version_,
                                                   " is not supported (stave reads versions 2 and 3)"));
  uint64_t tensor_count = 0, kv_count = 0;
  if (!r.Read(&tensor_count) || !r.Read(&kv_count))
    return Malformed(fname, r.offset(), "truncated header");
  // Each entry takes at least a few bytes, so the counts are bounded by the file size before
  // anything is reserved.
  if (kv_count > r.remaining() / 13) return Malformed(fname, r.offset(), "metadata count exceeds the file");
  if (tensor_count > r.remaining() / 24) return Malformed(fname, r.offset(), "tensor count exceeds the file");

  std::unordered_set<std::string_view> keys;
  file->metadata_.reserve(kv_count);
  for (uint64_t k = 0; k < kv_count; ++k) {
    std::string_view key;
    if (!r.ReadString(&key)) return Malformed(fname, r.offset(), absl::StrCat("truncated metadata key #", k));
    if (!keys.insert(key).second)
      return Malformed(fname, r.offset(), absl::StrCat("metadata key ", Sv(key), " appears twice"));
    Value v;
    uint32_t type;
    if (!r.Read(&type)) return Malformed(fname, r.offset(), absl::StrCat("truncated value of ", Sv(key)));
    v.type = static_cast<ValueType>(type);
    if (v.type == ValueType::kString) {
      if (!r.ReadString(&v.s)) return Malformed(fname, r.offset(), absl::StrCat("truncated string value of ", Sv(key)));
    } else if (v.type == ValueType::kArray) {
      uint32_t element_type;
      if (!r.Read(&element_type) || !r.Read(&v.count))
        return Malformed(fname, r.offset(), absl::StrCat("truncated array header of ", Sv(key)));
      v.array_type = static_cast<ValueType>(element_type);
      v.elements = r.here();
      if (v.array_type == ValueType::kString) {
        // Walk the strings once so that a later GetStringArray cannot run off the end.
        if (v.count > r.remaining() / 8) return Malformed(fname, r.offset(), absl::StrCat("array ", Sv(key), " exceeds the file"));
        std::string_view s;
        for (uint64_t e = 0; e < v.count; ++e)
          if (!r.ReadString(&s)) return Malformed(fname, r.offset(), absl::StrCat("truncated string #", e, " of ", Sv(key)));
      } else {
        const size_t bytes = ScalarBytes(v.array_type);
        if (bytes == 0)
          return Malformed(fname, r.offset(), absl::StrCat("array ", Sv(key), " has element type ", element_type,
                                                           " (arrays of arrays are not supported)"));
        if (v.count > r.remaining() / bytes || !r.Skip(v.count * bytes))
          return Malformed(fname, r.offset(), absl::StrCat("array ", Sv(key), " exceeds the file"));
      }
    } else {
      const size_t bytes = ScalarBytes(v.type);
      if (bytes == 0) return Malformed(fname, r.offset(), absl::StrCat("value of ", Sv(key), " has unknown type ", type));
      if (r.remaining() < bytes) return Malformed(fname, r.offset(), absl::StrCat("truncated value of ", Sv(key)));
      if (!DecodeScalar(v.type, r.here(), &v))
        return Malformed(fname, r.offset(), absl::StrCat("value of ", Sv(key), " does not fit a signed 64-bit integer"));
      r.Skip(bytes);
    }
    file->metadata_.emplace_back(std::string(key), v);
  }

  if (const Value* align = file->Find("general.alignment")) {
    if (!IsInteger(align->type) || align->i <= 0 || align->i > (1 << 20) || (align->i & (align->i - 1)) != 0)
      return absl::InvalidArgumentError(absl::StrCat(fname, ": general.alignment must be a power of two up to 1 MiB"));
    file->alignment_ = static_cast<size_t>(align->i);
  }

  struct Pending {
    uint64_t offset;
    uint64_t bytes;
  };
  std::vector<Pending> pending;
  std::unordered_set<std::string_view> names;
  file->tensors_.reserve(tensor_count);
  for (uint64_t t = 0; t < tensor_count; ++t) {
    std::string_view tname;
    if (!r.ReadString(&tname)) return Malformed(fname, r.offset(), absl::StrCat("truncated tensor info #", t));
    if (!names.insert(tname).second)
      return Malformed(fname, r.offset(), absl::StrCat("tensor ", Sv(tname), " appears twice"));
    TensorInfo info;
    info.name = std::string(tname);
    uint32_t n_dims;
    if (!r.Read(&n_dims)) return Malformed(fname, r.offset(), absl::StrCat("truncated tensor info of ", Sv(tname)));
    if (n_dims == 0 || n_dims > kMaxDims)
      return Malformed(fname, r.offset(), absl::StrCat("tensor ", Sv(tname), " has ", n_dims, " dimensions (1 to 4 allowed)"));
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t dim;
      if (!r.Read(&dim)) return Malformed(fname, r.offset(), absl::StrCat("truncated dimensions of ", Sv(tname)));
      if (dim <= 0 || dim > (int64_t{1} << 40) || elements > (int64_t{1} << 48) / dim)
        return Malformed(fname, r.offset(), absl::StrCat("tensor ", Sv(tname), " has an implausible dimension ", dim));
      elements *= dim;
      info.dims.push_back(dim);
    }
    uint32_t type;
    uint64_t offset;
    if (!r.Read(&type) || !r.Read(&offset))
      return Malformed(fname, r.offset(), absl::StrCat("truncated tensor info of ", Sv(tname)));
    info.type = static_cast<TensorType>(type);
    uint64_t bytes = 0;
    if (const int block = BlockElements(info.type); block > 0) {
      if (info.dims[0] % block != 0)
        return Malformed(fname, r.offset(), absl::StrCat("tensor ", Sv(tname), " (", TensorTypeName(info.type), ") has rows of ",
                                                         info.dims[0], " values, not a multiple of its block of ", block));
      bytes = static_cast<uint64_t>(elements / block) * BlockBytes(info.type);
    }
    if (offset % file->alignment_ != 0)
      return Malformed(fname, r.offset(), absl::StrCat("tensor ", Sv(tname), " data offset ", offset, " is not aligned to ",
                                                       file->alignment_));
    pending.push_back({offset, bytes});
    file->tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment.
  const size_t data_start = (r.offset() + file->alignment_ - 1) / file->alignment_ * file->alignment_;
  if (data_start > size && !file->tensors_.empty())
    return Malformed(fname, r.offset(), "the file ends before its tensor data");
  const size_t data_size = data_start <= size ? size - data_start : 0;
  for (size_t t = 0; t < file->tensors_.size(); ++t) {
    TensorInfo& info = file->tensors_[t];
    const Pending& p = pending[t];
    if (p.offset > data_size || p.bytes > data_size - p.offset)
      return absl::InvalidArgumentError(absl::StrCat(fname, ": tensor ", info.name, " (", p.bytes, " bytes at data offset ",
                                                     p.offset, ") lies beyond the end of the file (truncated?)"));
    info.data = data + data_start + p.offset;
    info.bytes = p.bytes;
  }
  return file;
}

const Value* File::Find(std::string_view key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

namespace {

absl::Status Missing(const File& f, std::string_view key) {
  return absl::NotFoundError(absl::StrCat(f.name(), ": metadata key ", Sv(key), " is missing"));
}
absl::Status WrongType(const File& f, std::string_view key, std::string_view wanted) {
  return absl::InvalidArgumentError(absl::StrCat(f.name(), ": metadata key ", Sv(key), " is not ", Sv(wanted)));
}

}  // namespace

absl::StatusOr<int64_t> File::GetInt(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(*this, key);
  if (!IsInteger(v->type)) return WrongType(*this, key, "an integer");
  return v->i;
}

absl::StatusOr<double> File::GetFloat(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(*this, key);
  if (v->type == ValueType::kFloat32 || v->type == ValueType::kFloat64) return v->f;
  if (IsInteger(v->type)) return static_cast<double>(v->i);
  return WrongType(*this, key, "a number");
}

absl::StatusOr<std::string> File::GetString(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(*this, key);
  if (v->type != ValueType::kString) return WrongType(*this, key, "a string");
  return std::string(v->s);
}

absl::StatusOr<std::vector<std::string>> File::GetStringArray(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(*this, key);
  if (v->type != ValueType::kArray || v->array_type != ValueType::kString)
    return WrongType(*this, key, "an array of strings");
  // Bounds were checked while parsing; the reader re-walks the same bytes.
  Reader r(v->elements, static_cast<size_t>(bytes_ + size_ - v->elements));
  std::vector<std::string> out;
  out.reserve(v->count);
  std::string_view s;
  for (uint64_t e = 0; e < v->count; ++e) {
    r.ReadString(&s);
    out.emplace_back(s);
  }
  return out;
}

absl::StatusOr<std::vector<float>> File::GetFloatArray(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(*this, key);
  if (v->type != ValueType::kArray || (v->array_type != ValueType::kFloat32 && v->array_type != ValueType::kFloat64))
    return WrongType(*this, key, "an array of floats");
  std::vector<float> out(v->count);
  const size_t bytes = ScalarBytes(v->array_type);
  Value scalar;
  for (uint64_t e = 0; e < v->count; ++e) {
    DecodeScalar(v->array_type, v->elements + e * bytes, &scalar);
    out[e] = static_cast<float>(scalar.f);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> File::GetIntArray(std::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(*this, key);
  if (v->type != ValueType::kArray || !IsInteger(v->array_type)) return WrongType(*this, key, "an array of integers");
  std::vector<int64_t> out(v->count);
  const size_t bytes = ScalarBytes(v->array_type);
  Value scalar;
  for (uint64_t e = 0; e < v->count; ++e) {
    if (!DecodeScalar(v->array_type, v->elements + e * bytes, &scalar))
      return WrongType(*this, key, "an array of integers that fit 64 bits");
    out[e] = scalar.i;
  }
  return out;
}

const TensorInfo* File::FindTensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace stave::gguf
