#include "core/safetensors.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace stave {
namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2}};

const DtypeInfo* FindDtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}
const DtypeInfo* FindDtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

}  // namespace

absl::StatusOr<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  auto st = std::make_shared<SafetensorsFile>();
  st->file_ = *std::move(file);
  const size_t size = st->file_->size();
  if (size < 8) return absl::DataLossError(absl::StrCat(path, ": too short for a safetensors header"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, st->file_->data(), 8);  // little-endian on every platform we target
  if (header_len > size - 8)
    // No numbers in the message: the "length" is the file's first 8 bytes, whatever the file is.
    return absl::DataLossError(absl::StrCat(path, ": not a safetensors file (its header length exceeds the "
                                            "file; truncated?)"));
  const char* header_begin = reinterpret_cast<const char*>(st->file_->data() + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len, nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return absl::DataLossError(absl::StrCat(path, ": the JSON header is malformed"));
  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;
  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (value.is_object())
        for (auto& [k, v] : value.items())
          if (v.is_string()) st->metadata_[k] = v.get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) {
      return absl::DataLossError(absl::StrCat(path, ": tensor '", name, "': ", why));
    };
    if (!value.is_object() || !value.contains("dtype") || !value["dtype"].is_string() ||
        !value.contains("shape") || !value["shape"].is_array() || !value.contains("data_offsets") ||
        !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      return bad("header entry lacks dtype, shape or data_offsets");
    Entry e;
    e.dtype = value["dtype"].get<std::string>();
    const DtypeInfo* info = FindDtype(e.dtype);
    if (info == nullptr)
      return bad(absl::StrCat("unsupported dtype ", e.dtype, " (supported: F32, F16, BF16)"));
    size_t elements = 1;
    for (auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) return bad("shape holds a non-integer or negative dimension");
      e.shape.push_back(d.get<int64_t>());
      elements *= d.get<size_t>();
    }
    auto& offs = value["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      return bad("data_offsets are not non-negative integers");
    size_t begin = offs[0].get<size_t>(), end = offs[1].get<size_t>();
    if (begin > end || end > data_size)
      return bad(absl::StrCat("data range [", begin, ", ", end, ") lies outside the ", data_size,
                              " data bytes of the file (truncated?)"));
    if (end - begin != elements * info->size)
      return bad(absl::StrCat("byte range of ", end - begin, " does not match shape [",
                              absl::StrJoin(e.shape, ","), "] of ", e.dtype));
    e.offset = data_start + begin;
    e.bytes = end - begin;
    st->entries_[name] = std::move(e);
  }
  return st;
}

absl::StatusOr<at::Tensor> SafetensorsFile::LoadFloat(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    return absl::NotFoundError(absl::StrCat(path(), ": tensor '", name, "' is missing"));
  const Entry& e = it->second;
  const DtypeInfo* info = FindDtype(e.dtype);
  // from_blob does not own the mapping; the copy below (clone or upcast) produces owned memory.
  // Safetensors offsets need not be aligned, so go through an aligned copy for F32 too.
  auto view = torch::from_blob(const_cast<unsigned char*>(file_->data() + e.offset),
                               {static_cast<int64_t>(e.bytes)}, torch::kUInt8);
  auto raw = view.clone();
  return raw.view(info->type).view(e.shape).to(torch::kFloat);
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> blobs;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const DtypeInfo* info = FindDtype(t.scalar_type());
    if (info == nullptr)
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write tensor '", name, "' of dtype ", toString(t.scalar_type())));
    auto c = t.detach().to(torch::kCPU).contiguous();
    size_t bytes = c.numel() * info->size;
    header[name] = {{"dtype", info->name},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), text.size());
  for (const auto& b : blobs)
    out.write(static_cast<const char*>(b.data_ptr()), b.numel() * b.element_size());
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("failed writing ", path));
  return absl::OkStatus();
}

}  // namespace stave
