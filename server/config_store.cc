#include "server/config_store.h"

#include "absl/strings/str_cat.h"

namespace stave::server {

ConfigStore::ConfigStore(const Model& model, PositionConfig initial, PositionCache* cache)
    : model_(model), cache_(cache), current_(std::make_shared<ConfigSnapshot>(ConfigSnapshot{1, std::move(initial)})) {}

std::shared_ptr<const ConfigSnapshot> ConfigStore::Current() const {
  std::lock_guard<std::mutex> lock(snapshot_);
  return current_;
}

absl::StatusOr<std::shared_ptr<const ConfigSnapshot>> ConfigStore::Update(const ConfigUpdate& update) {
  std::lock_guard<std::mutex> writer(writer_);
  return ApplyLocked(Current()->position, update);
}

absl::StatusOr<std::shared_ptr<const ConfigSnapshot>> ConfigStore::Replace(const ConfigUpdate& update) {
  std::lock_guard<std::mutex> writer(writer_);
  return ApplyLocked(PositionConfig{}, update);
}

absl::StatusOr<std::shared_ptr<const ConfigSnapshot>> ConfigStore::ApplyLocked(PositionConfig next,
                                                                              const ConfigUpdate& u) {
  const uint64_t version = Current()->version;
  if (u.expected_version != 0 && u.expected_version != version)
    return absl::FailedPreconditionError(absl::StrCat(
        "expected_version: the config is at version ", version, ", not ", u.expected_version,
        "; read it again (GetConfig) and retry"));
  auto applied = ApplyPositionUpdate(model_, std::move(next), u, cache_);
  if (!applied.ok()) return applied.status();
  next = *std::move(applied);
  auto snapshot = std::make_shared<const ConfigSnapshot>(ConfigSnapshot{version + 1, std::move(next)});
  {
    std::lock_guard<std::mutex> lock(snapshot_);
    current_ = snapshot;
  }
  if (listener_) listener_(*snapshot);
  return snapshot;
}

void ConfigStore::SetConfigFile(std::string path) {
  std::lock_guard<std::mutex> lock(snapshot_);
  config_file_ = std::move(path);
}

void ConfigStore::SetConfigFileError(std::string error) {
  std::lock_guard<std::mutex> lock(snapshot_);
  config_file_error_ = std::move(error);
}

std::string ConfigStore::config_file() const {
  std::lock_guard<std::mutex> lock(snapshot_);
  return config_file_;
}

std::string ConfigStore::config_file_error() const {
  std::lock_guard<std::mutex> lock(snapshot_);
  return config_file_error_;
}

void ConfigStore::OnChange(std::function<void(const ConfigSnapshot&)> listener) {
  std::lock_guard<std::mutex> writer(writer_);
  listener_ = std::move(listener);
}

}  // namespace stave::server
