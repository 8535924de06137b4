#include "core/position_rules.h"

#include "absl/strings/str_cat.h"
#include "core/position_runtime.h"

namespace stave {

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

absl::StatusOr<PositionConfig> ApplyPositionUpdate(const Model& model, PositionConfig next,
                                                   const PositionUpdate& u, PositionCache* cache) {
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
      auto searched = SearchBases(SearchOptionsFor(model, u.bucket_count));
      if (!searched.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("bucket_count: the base search failed: ", searched.status().message()));
      next.bases = searched->bases;
    }
  }
  if (u.fusion) next.fusion = *u.fusion;
  if (u.expert_bases) {
    next.expert_bases = *u.expert_bases;
    if (!u.top_k) next.top_k = 0;  // new experts without a top_k: all of them (the default)
  }
  if (u.top_k) next.top_k = *u.top_k;
  if (u.router_path) next.router_path = *u.router_path;
  next = WithPositionDefaults(std::move(next));
  auto status = ValidateForModel(model, next, cache);
  if (!status.ok()) return status;
  return next;
}

}  // namespace stave
