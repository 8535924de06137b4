// What running position configs needs beyond the weights, kept between requests by whoever
// serves them (staved's engine runtime): RoPE tables stacked per base set and MoICE routers
// (loaded from their files or initialised untrained). The Model stays immutable weights; without
// a cache (a single in-process run) the same objects are built for the one use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model_config.h"
#include "core/position_config.h"

namespace stave {

struct RopeTable;
struct MoiceRouters;

// Tables for several bases stacked as [N, context, head_dim] (one per branch or expert base).
std::shared_ptr<const RopeTable> StackRopeTables(const ModelConfig& config, const std::vector<double>& bases);

// The routers a MoICE config asks for: its router file (checked against the model and the
// config's expert bases), or, without one, untrained routers initialised as training does
// (Normal(0, 0.02), seed 0), with the config's K.
absl::StatusOr<std::shared_ptr<const MoiceRouters>> LoadRouters(const ModelConfig& config,
                                                                const PositionConfig& position);

class PositionCache {
 public:
  explicit PositionCache(const ModelConfig& config) : config_(config) {}

  // As the functions above, computed once per base set / router and kept while requests use
  // them (unused entries are dropped beyond 32 of a kind). Thread-safe.
  std::shared_ptr<const RopeTable> RopeTables(const std::vector<double>& bases);
  absl::StatusOr<std::shared_ptr<const MoiceRouters>> Routers(const PositionConfig& position);

 private:
  const ModelConfig config_;
  std::mutex mutex_;
  std::map<std::vector<double>, std::shared_ptr<const RopeTable>> rope_;
  std::map<std::string, std::shared_ptr<const MoiceRouters>> routers_;
};

}  // namespace stave
