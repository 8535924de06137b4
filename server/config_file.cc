#include "server/config_file.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "core/text_file.h"

namespace stave::server {
namespace {

// A position config is a few lines; anything larger is a mistake, not a config.
constexpr int64_t kMaxConfigFileBytes = 1 << 20;

std::vector<double> ReadBases(const YAML::Node& node, const char* key) {
  if (!node.IsSequence()) throw YAML::Exception(node.Mark(), absl::StrCat(key, ": expected a list of numbers"));
  std::vector<double> bases;
  for (const auto& item : node) bases.push_back(item.as<double>());
  return bases;
}

}  // namespace

absl::StatusOr<ConfigUpdate> ParseConfigText(const std::string& text, const std::string& dir) {
  ConfigUpdate update;
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return update;  // an empty file: the defaults (vanilla)
    if (!root.IsMap()) return absl::InvalidArgumentError("expected a mapping of keys to values");
    for (const auto& entry : root) {
      const std::string key = entry.first.as<std::string>();
      const YAML::Node& value = entry.second;
      if (key == "mode") {
        auto mode = ParsePositionMode(value.as<std::string>());
        if (!mode.ok()) return mode.status();
        update.mode = *mode;
      } else if (key == "bases") {
        update.bases = ReadBases(value, "bases");
      } else if (key == "bucket_count") {
        update.bucket_count = value.as<int>();
      } else if (key == "fusion") {
        auto fusion = ParseFusion(value.as<std::string>());
        if (!fusion.ok()) return fusion.status();
        update.fusion = *fusion;
      } else if (key == "expert_bases") {
        update.expert_bases = ReadBases(value, "expert_bases");
      } else if (key == "top_k") {
        update.top_k = value.as<int>();
      } else if (key == "router_path") {
        std::filesystem::path router = value.as<std::string>();
        update.router_path = router.empty() || router.is_absolute() ? router.string()
                                                                    : (std::filesystem::path(dir) / router).string();
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown key '", key, "' (known: mode, bases, bucket_count, fusion, expert_bases, top_k, router_path)"));
      }
    }
  } catch (const YAML::Exception& e) {
    // Conversion errors (a word where a number belongs) land here too, with line and column.
    return absl::InvalidArgumentError(absl::StrCat("line ", e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  }
  return update;
}

ConfigFileWatcher::ConfigFileWatcher(std::string path, ConfigStore& store,
                                     std::chrono::milliseconds poll, std::function<void(bool)> on_result)
    : path_(std::move(path)), store_(store), poll_(poll), on_result_(std::move(on_result)) {
  store_.SetConfigFile(path_);
}

ConfigFileWatcher::~ConfigFileWatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status ConfigFileWatcher::Load() {
  auto text = ReadTextFile(path_, kMaxConfigFileBytes);
  if (!text.ok()) return text.status();
  last_text_ = *text;
  return Apply(*text);
}

void ConfigFileWatcher::Start() { thread_ = std::thread([this] { Run(); }); }

absl::Status ConfigFileWatcher::Apply(const std::string& text) {
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  auto update = ParseConfigText(text, dir);
  absl::Status status = update.status();
  if (status.ok()) {
    auto applied = store_.Replace(*update);
    status = applied.status();
    if (status.ok())
      spdlog::info("config file {}: applied as version {}", path_, (*applied)->version);
  }
  if (!status.ok()) {
    status = absl::Status(status.code(), absl::StrCat("config file ", path_, ": ", status.message()));
    // At start-up the caller reports the error and stops; later the running config stays.
    if (thread_.joinable())
      spdlog::error("{}; the running config (version {}) stays in force", std::string(status.message()),
                    store_.Current()->version);
  }
  store_.SetConfigFileError(status.ok() ? "" : std::string(status.message()));
  if (on_result_) on_result_(status.ok());
  return status;
}

void ConfigFileWatcher::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, poll_, [this] { return stopping_; })) {
    // Content, not mtime: a ConfigMap update swaps a symlink and may keep timestamps.
    auto text = ReadTextFile(path_, kMaxConfigFileBytes);
    if (!text.ok()) {
      const std::string error = absl::StrCat("config file ", path_, ": ", text.status().message());
      if (store_.config_file_error() != error) {
        spdlog::error("{}; the running config stays in force", error);
        store_.SetConfigFileError(error);
        if (on_result_) on_result_(false);
      }
      last_text_.clear();
      continue;
    }
    if (*text == last_text_) continue;
    last_text_ = *text;
    Apply(*text).IgnoreError();  // logged and recorded by Apply
  }
}

}  // namespace stave::server
