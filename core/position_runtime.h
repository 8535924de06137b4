// What running a position config needs, prepared once per request and shared by generation and
// scoring: the branch count (buckets), the RoPE tables (the model's own, one per bucket or one per
// expert base), the MoICE routers, and a KV cache shaped for them.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "core/kv_cache.h"
#include "core/model.h"
#include "core/position_cache.h"
#include "core/position_config.h"

namespace stave {

struct PositionRuntime {
  int branches = 1;                             // buckets: one batch row per base
  std::shared_ptr<const RopeTable> rope;        // null: the model's own table
  std::shared_ptr<const MoiceRouters> routers;  // moice only

  const RopeTable& Rope(const Model& model) const;
  // Cache tables in the paged pool: a key and a value table per branch; MoICE one key table per
  // expert base and one value table.
  int key_rows() const;
  int value_rows() const;
  int64_t KvBytes(const ModelConfig& config, int capacity) const;
  KvCache AllocateCache(const ModelConfig& config, int capacity) const;
};

// Validates the config (ValidatePositionConfig) and loads what it needs: RoPE tables, the router
// file (loaded and checked against the model and the expert bases), from `cache` when given (a
// server keeps one), else built for this use. Errors name the field.
absl::StatusOr<PositionRuntime> PreparePosition(const Model& model, const PositionConfig& config,
                                                PositionCache* cache = nullptr);

// RESOURCE_EXHAUSTED when the KV cache for `capacity` positions would exceed budget_mb.
absl::Status CheckKvBudget(const PositionRuntime& runtime, const ModelConfig& config, int capacity,
                           int64_t budget_mb);

}  // namespace stave
