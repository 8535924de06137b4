#include "server/config_store.h"

#include "absl/strings/str_cat.h"
#include "core/position_runtime.h"

namespace stave::server {

BaseSearchOptions SearchOptionsFor(const Model& model, int count) {
  BaseSearchOptions options;
  options.head_dim = model.config().head_dim();
  options.context = model.config().max_seq_len;
  options.start_base = model.config().rope_theta;
  options.count = count;
  return options;
}

absl::Status ValidateForModel(const Model& model, const PositionConfig& config, PositionCache* cache) {
  // Each mode's fields are checked when that mode is active or its fields are set, so a config
  // never stores values that would fail once the mode is switched.
  if (config.mode == PositionMode::kBuckets || !config.bases.empty()) {
    PositionConfig buckets = config;
    buckets.mode = PositionMode::kBuckets;
    auto status = PreparePosition(model, buckets, cache).status();
    if (!status.ok()) return status;
  }
  if (config.mode == PositionMode::kMoice || !config.expert_bases.empty() || !config.router_path.empty() ||
      config.top_k != 0) {
    PositionConfig moice = config;
    moice.mode = PositionMode::kMoice;
    auto status = PreparePosition(model, moice, cache).status();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

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
  if (u.mode) next.mode = *u.mode;
  if (u.bases) next.bases = *u.bases;
  if (u.bucket_count != 0) {
    if (u.bucket_count < 1 || u.bucket_count > kMaxBuckets)
      return absl::InvalidArgumentError(
          absl::StrCat("bucket_count: must be in 1..", kMaxBuckets, ", got ", u.bucket_count));
    if (u.bases && static_cast<int>(u.bases->size()) != u.bucket_count)
      return absl::InvalidArgumentError(absl::StrCat("bucket_count: ", u.bucket_count, " disagrees with the ",
                                                     u.bases->size(), " bases given; give one or the other"));
    if (!u.bases) {
      auto searched = SearchBases(SearchOptionsFor(model_, u.bucket_count));
      if (!searched.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("bucket_count: the base search failed: ", searched.status().message()));
      next.bases = searched->bases;
    }
  }
  if (u.fusion) next.fusion = *u.fusion;
  if (u.expert_bases) {
    next.expert_bases = *u.expert_bases;
    if (!u.top_k) next.top_k = static_cast<int>(next.expert_bases.size());
  }
  if (u.top_k) next.top_k = *u.top_k;
  if (u.router_path) next.router_path = *u.router_path;

  auto status = ValidateForModel(model_, next, cache_);
  if (!status.ok()) return status;
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
