// The rules a position config is held to on a model, decided here once for every interface:
// staved's UpdateConfig and --config file, a request's own config, the CLI's flags. Those only
// parse into PositionConfig / PositionUpdate; the defaults (WithPositionDefaults, in
// position_config.h: MoICE top_k 0 = every expert), partial updates, validation against the model
// and the base search's options for a model are here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base_search.h"
#include "core/model.h"
#include "core/position_cache.h"
#include "core/position_config.h"

namespace stave {

// A partial change of a position config: unset fields keep their value.
struct PositionUpdate {
  std::optional<PositionMode> mode;
  std::optional<std::vector<double>> bases;
  int bucket_count = 0;  // > 0 without bases: the base search picks that many bases
  std::optional<Fusion> fusion;
  std::optional<std::vector<double>> expert_bases;  // alone: top_k becomes all of them
  std::optional<int> top_k;                         // 0: all the expert bases
  std::optional<std::string> router_path;
  // For a versioned store (staved's ConfigStore): the update applies only at this version; 0 =
  // unconditional. ApplyPositionUpdate itself ignores it.
  uint64_t expected_version = 0;
};

// Base search options for `count` bases on this model (head dim, context and base from it).
BaseSearchOptions SearchOptionsFor(const Model& model, int count);

// Every field that is set must be valid, not only the active mode's: bases (finite, > 1, at most
// kMaxBuckets), expert bases and top_k, and the router file (loads and matches the model), so a
// config never holds values that would fail once its mode is switched. Router files and tables
// come from `cache` when given.
absl::Status ValidateForModel(const Model& model, const PositionConfig& config,
                              PositionCache* cache = nullptr);

// `update` applied to `config`: its fields replace the config's, bucket_count alone runs the base
// search, expert bases without top_k select all of them, then the defaults and ValidateForModel.
// INVALID_ARGUMENT naming the field.
absl::StatusOr<PositionConfig> ApplyPositionUpdate(const Model& model, PositionConfig config,
                                                   const PositionUpdate& update,
                                                   PositionCache* cache = nullptr);

}  // namespace stave
