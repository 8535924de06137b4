#include "server/router_directory.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace stave::server {
namespace fs = std::filesystem;
namespace {

constexpr char kExtension[] = ".safetensors";
constexpr size_t kMaxNameLength = 64;

// Letters, digits, '.', '_', '-', not starting with '.': no separators, no "..", no hidden files.
// Not a model's own weights (model.safetensors, model-00001-of-00002.safetensors), which share
// the directory and the file type.
bool IsRouterName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength || name[0] == '.') return false;
  if (name == "model" || (absl::StartsWith(name, "model-") && absl::StrContains(name, "-of-"))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

absl::StatusOr<std::string> RouterDirectory::PathOf(const std::string& name) const {
  if (name.empty()) return std::string();
  if (!IsRouterName(name))
    return absl::InvalidArgumentError(
        "router: not a router name (a name GetModelInfo lists: letters, digits, '.', '_', '-', at "
        "most 64; never a path)");
  std::error_code ec;
  const fs::path path = fs::path(dir_) / (name + kExtension);
  if (dir_.empty() || !fs::is_regular_file(path, ec)) {
    const auto names = List();
    return absl::InvalidArgumentError(absl::StrCat("router: no router named '", name, "' on this server (available: ",
                                                   names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
  }
  return path.string();
}

std::string RouterDirectory::NameOf(const std::string& path) {
  if (path.empty()) return "";
  std::string name = fs::path(path).filename().string();
  if (absl::EndsWith(name, kExtension)) name.resize(name.size() - (sizeof kExtension - 1));
  return name;
}

std::vector<std::string> RouterDirectory::List() const {
  std::vector<std::string> names;
  std::error_code ec;
  if (dir_.empty() || !fs::is_directory(dir_, ec)) return names;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string file = entry.path().filename().string();
    if (!absl::EndsWith(file, kExtension) || !entry.is_regular_file(ec)) continue;
    std::string name = NameOf(file);
    if (IsRouterName(name)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

RouterDirectory::RouterDirectory(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  dir_ = fs::path(dir_).lexically_normal().string();
  if (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string RouterDirectory::Redact(const std::string& message) const {
  if (dir_.empty()) return message;
  return absl::StrReplaceAll(message, {{dir_ + "/", ""}, {dir_, "<router dir>"}});
}

}  // namespace stave::server
