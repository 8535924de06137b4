#include "core/safetensors.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
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
  auto header = ParseSafetensorsHeader(st->file_->data(), st->file_->size(), path);
  if (!header.ok()) return header.status();
  st->entries_ = std::move(header->entries);
  st->metadata_ = std::move(header->metadata);
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
