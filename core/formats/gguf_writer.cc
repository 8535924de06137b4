#include "core/formats/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace stave::gguf {
namespace {

constexpr size_t kAlignment = 32;  // GGUF's default (general.alignment absent)

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out += s;
}

size_t Align(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

void Writer::Key(const std::string& key, ValueType type) {
  PutString(kv_, key);
  Put<uint32_t>(kv_, static_cast<uint32_t>(type));
  ++kv_count_;
}

void Writer::SetString(const std::string& key, const std::string& value) {
  Key(key, ValueType::kString);
  PutString(kv_, value);
}
void Writer::SetUint32(const std::string& key, uint32_t value) {
  Key(key, ValueType::kUint32);
  Put(kv_, value);
}
void Writer::SetInt32(const std::string& key, int32_t value) {
  Key(key, ValueType::kInt32);
  Put(kv_, value);
}
void Writer::SetFloat32(const std::string& key, float value) {
  Key(key, ValueType::kFloat32);
  Put(kv_, value);
}
void Writer::SetBool(const std::string& key, bool value) {
  Key(key, ValueType::kBool);
  Put<uint8_t>(kv_, value ? 1 : 0);
}
void Writer::SetStringArray(const std::string& key, const std::vector<std::string>& values) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(kv_, static_cast<uint32_t>(ValueType::kString));
  Put<uint64_t>(kv_, values.size());
  for (const auto& v : values) PutString(kv_, v);
}
void Writer::SetFloat32Array(const std::string& key, const std::vector<float>& values) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(kv_, static_cast<uint32_t>(ValueType::kFloat32));
  Put<uint64_t>(kv_, values.size());
  for (float v : values) Put(kv_, v);
}
void Writer::SetInt32Array(const std::string& key, const std::vector<int32_t>& values) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(kv_, static_cast<uint32_t>(ValueType::kInt32));
  Put<uint64_t>(kv_, values.size());
  for (int32_t v : values) Put(kv_, v);
}

void Writer::AddTensor(const std::string& name, std::vector<int64_t> dims, TensorType type,
                       std::string data) {
  tensors_.push_back({name, std::move(dims), type, std::move(data)});
}

std::string Writer::Header() const {
  std::string out;
  Put<uint32_t>(out, 0x46554747);  // "GGUF"
  Put<uint32_t>(out, 3);
  Put<uint64_t>(out, tensors_.size());
  Put<uint64_t>(out, kv_count_);
  out += kv_;
  size_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<int64_t>(out, d);
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(out, offset);
    offset = Align(offset + t.data.size());
  }
  out.resize(Align(out.size()), '\0');
  return out;
}

std::string Writer::Serialize() const {
  std::string out = Header();
  for (const Tensor& t : tensors_) {
    out += t.data;
    out.resize(Align(out.size()), '\0');
  }
  return out;
}

absl::Status Writer::WriteFile(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
    // Streamed tensor by tensor: a model is not held twice in memory.
    const std::string header = Header();
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    const std::string padding(kAlignment, '\0');
    for (const Tensor& t : tensors_) {
      f.write(t.data.data(), static_cast<std::streamsize>(t.data.size()));
      f.write(padding.data(), static_cast<std::streamsize>(Align(t.data.size()) - t.data.size()));
    }
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      return absl::ResourceExhaustedError(absl::StrCat("writing ", path, " failed (disk full?)"));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace stave::gguf
