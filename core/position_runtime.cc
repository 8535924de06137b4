#include "core/position_runtime.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/moice_router.h"
#include "core/rope.h"

namespace stave {

const RopeTable& PositionRuntime::Rope(const Model& model) const {
  return rope != nullptr ? *rope : model.rope();
}

int PositionRuntime::key_rows() const { return routers != nullptr ? routers->experts() : branches; }
int PositionRuntime::value_rows() const { return routers != nullptr ? 1 : branches; }

int64_t PositionRuntime::KvBytes(const ModelConfig& config, int capacity) const {
  // MoICE keeps one key copy per expert base next to one value copy.
  if (routers != nullptr)
    return KvCache::BytesFor(config, 1, capacity) / 2 * (1 + routers->experts());
  return KvCache::BytesFor(config, branches, capacity);
}

KvCache PositionRuntime::AllocateCache(const ModelConfig& config, int capacity) const {
  return KvCache::Allocate(config, branches, capacity, routers != nullptr ? routers->experts() : 0);
}

absl::StatusOr<PositionRuntime> PreparePosition(const Model& model, const PositionConfig& config,
                                                PositionCache* cache) {
  auto tables = [&](const std::vector<double>& bases) {
    return cache != nullptr ? cache->RopeTables(bases) : StackRopeTables(model.config(), bases);
  };
  auto status = ValidatePositionConfig(config);
  if (!status.ok()) return status;
  PositionRuntime runtime;
  switch (config.mode) {
    case PositionMode::kVanilla: break;
    case PositionMode::kBuckets:
      runtime.branches = static_cast<int>(config.bases.size());
      runtime.rope = tables(config.bases);
      break;
    case PositionMode::kMoice: {
      auto routers = cache != nullptr ? cache->Routers(config) : LoadRouters(model.config(), config);
      if (!routers.ok()) {
        // A router file that is missing, corrupt or made for another model is a bad argument of
        // this config, whatever the loader called it.
        absl::string_view message = routers.status().message();
        return absl::InvalidArgumentError(absl::StartsWith(message, "router_path:")
                                              ? std::string(message)
                                              : absl::StrCat("router_path: ", message));
      }
      runtime.routers = *std::move(routers);
      runtime.rope = tables(config.expert_bases);
      break;
    }
  }
  return runtime;
}

absl::Status CheckKvBudget(const PositionRuntime& runtime, const ModelConfig& config, int capacity,
                           int64_t budget_mb) {
  const int64_t bytes = runtime.KvBytes(config, capacity);
  if (bytes <= budget_mb * (int64_t{1} << 20)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "KV cache: ", runtime.branches, " branch(es) x ", capacity, " positions need ",
      (bytes + (1 << 20) - 1) >> 20, " MiB, over the budget of ", budget_mb,
      " MiB; use fewer buckets, fewer tokens or a larger budget"));
}

}  // namespace stave
